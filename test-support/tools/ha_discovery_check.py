#!/usr/bin/env python3
"""Checks Home Assistant MQTT discovery messages the way Home Assistant reads them, from its
documentation (MQTT discovery; the binary_sensor, sensor, select and switch platforms),
written apart from the vm's code: the topic's shape, the JSON config, the keys each
component requires, topics without wildcards, a device with identifiers, unique ids.

    ha_discovery_check.py FILE      (lines `TOPIC PAYLOAD`, as `mosquitto_sub -v` prints them)

Prints `OK <n> configs: <components>` and exits 0, or prints each problem and exits 1.
"""
import json
import re
import sys

COMPONENTS = {"binary_sensor", "sensor", "select", "switch", "button", "camera", "device_tracker",
              "number", "text", "event", "image", "update", "alarm_control_panel"}
ID = re.compile(r"^[a-zA-Z0-9_-]+$")
BINARY_SENSOR_CLASSES = {"battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
                         "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving",
                         "occupancy", "opening", "plug", "power", "presence", "problem", "running", "safety",
                         "smoke", "sound", "tamper", "update", "vibration", "window"}
REQUIRED = {"binary_sensor": ["state_topic"], "sensor": ["state_topic"],
            "select": ["command_topic", "options"], "switch": ["command_topic"]}
TOPIC_KEYS = ("state_topic", "command_topic", "availability_topic", "json_attributes_topic")


def valid_topic(t, publish):
    if not isinstance(t, str) or not t or len(t.encode()) > 65535 or "\0" in t:
        return False
    return not (publish and ("+" in t or "#" in t))


def check(topic, payload, problems, unique_ids):
    parts = topic.split("/")
    if len(parts) not in (4, 5) or parts[-1] != "config":
        problems.append(f"{topic}: not <prefix>/<component>/[<node_id>/]<object_id>/config")
        return None
    component = parts[1]
    if component not in COMPONENTS:
        problems.append(f"{topic}: unknown component {component}")
    for p in parts[2:-1]:
        if not ID.match(p):
            problems.append(f"{topic}: id {p!r} is not [a-zA-Z0-9_-]+")
    try:
        c = json.loads(payload)
    except ValueError as e:
        problems.append(f"{topic}: not JSON ({e})")
        return None
    if not isinstance(c, dict):
        problems.append(f"{topic}: the config is not an object")
        return None
    for k in REQUIRED.get(component, []):
        if k not in c:
            problems.append(f"{topic}: {component} requires {k}")
    for k in TOPIC_KEYS:
        if k in c and not valid_topic(c[k], publish=(k != "state_topic")):
            problems.append(f"{topic}: {k} {c[k]!r} is not a valid topic")
    uid = c.get("unique_id")
    if not isinstance(uid, str) or not uid:
        problems.append(f"{topic}: no unique_id (the entity cannot be managed in the UI)")
    elif uid in unique_ids:
        problems.append(f"{topic}: unique_id {uid} used twice")
    else:
        unique_ids.add(uid)
    dev = c.get("device")
    if not isinstance(dev, dict) or not (dev.get("identifiers") or dev.get("connections")):
        problems.append(f"{topic}: device needs identifiers or connections")
    elif isinstance(dev.get("identifiers"), list) and not all(isinstance(i, str) for i in dev["identifiers"]):
        problems.append(f"{topic}: device identifiers must be strings")
    if component == "binary_sensor" and "device_class" in c and c["device_class"] not in BINARY_SENSOR_CLASSES:
        problems.append(f"{topic}: device_class {c['device_class']} is not a binary_sensor class")
    if component == "select":
        opts = c.get("options")
        if not isinstance(opts, list) or not opts or not all(isinstance(o, str) for o in opts):
            problems.append(f"{topic}: options must be a non-empty list of strings")
    if "name" in c and c["name"] is not None and not isinstance(c["name"], str):
        problems.append(f"{topic}: name must be a string")
    return component


def main():
    problems, unique_ids, components = [], set(), []
    for line in open(sys.argv[1], encoding="utf-8"):
        line = line.rstrip("\n")
        if not line:
            continue
        topic, _, payload = line.partition(" ")
        if not topic.endswith("/config"):
            continue
        comp = check(topic, payload, problems, unique_ids)
        if comp:
            components.append(comp)
    if not components:
        problems.append("no discovery config at all")
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"OK {len(components)} configs: {', '.join(sorted(set(components)))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
