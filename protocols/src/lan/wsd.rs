//! WS-Discovery (the 2005/04 draft ONVIF uses) over UDP multicast 239.255.255.250:3702: the
//! probe an edge sends for network video transmitters, and the probe matches, hellos and
//! byes cameras send.
//!
//! ```text
//! edge ── multicast Probe(Types dn:NetworkVideoTransmitter, MessageID m) ──▶ every camera
//!      ◀─ unicast ProbeMatches(RelatesTo m, EndpointReference, Types, Scopes, XAddrs)
//! camera ── multicast Hello (on joining) / Bye (on leaving) ──▶ listeners on port 3702
//! ```
//!
//! Scopes carry what a camera says of itself without authentication
//! (`onvif://www.onvif.org/hardware/<model>`, `.../name/<name>`, `.../mfr/<maker>`,
//! percent-encoded): [`Endpoint::scope`].

use super::LanError;
use super::xml::{self, Element};

/// The multicast group and port.
pub const GROUP: std::net::SocketAddrV4 =
    std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(239, 255, 255, 250), 3702);
/// WS-Addressing (2004/08).
pub const WSA: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
/// WS-Discovery (2005/04).
pub const WSD: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery";
/// ONVIF's network namespace (`NetworkVideoTransmitter`).
pub const DN: &str = "http://www.onvif.org/ver10/network/wsdl";
/// The largest datagram read.
pub const MAX_DATAGRAM: usize = 64 * 1024;
/// At most this many matches, scopes or addresses are read from one message.
const MAX_ITEMS: usize = 64;

/// A probe for ONVIF video transmitters, with its `MessageID` (`urn:uuid:...`).
pub fn probe(message_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <s:Envelope xmlns:s=\"{}\" xmlns:a=\"{WSA}\" xmlns:d=\"{WSD}\" xmlns:dn=\"{DN}\">\
         <s:Header>\
         <a:Action s:mustUnderstand=\"1\">{WSD}/Probe</a:Action>\
         <a:MessageID>{}</a:MessageID>\
         <a:ReplyTo><a:Address>{WSA}/role/anonymous</a:Address></a:ReplyTo>\
         <a:To s:mustUnderstand=\"1\">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>\
         </s:Header>\
         <s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body>\
         </s:Envelope>",
        super::onvif::SOAP,
        xml::escape(message_id)
    )
}

/// What a device says of itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// Its endpoint reference (`urn:uuid:...`), stable across its restarts.
    pub address: String,
    /// Its types' local names (`NetworkVideoTransmitter`, `Device`).
    pub types: Vec<String>,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Its service addresses (device service URLs).
    pub xaddrs: Vec<String>,
}

impl Endpoint {
    /// The value of an ONVIF scope `onvif://www.onvif.org/<key>/<value>`, percent-decoded
    /// (`hardware`, `name`, `mfr`, `location`).
    pub fn scope(&self, key: &str) -> Option<String> {
        let prefix = format!("onvif://www.onvif.org/{key}/");
        self.scopes
            .iter()
            .find_map(|s| s.strip_prefix(&prefix))
            .map(|v| {
                crate::credential::percent_decode(v)
                    .chars()
                    .take(128)
                    .collect()
            })
            .filter(|v: &String| !v.is_empty())
    }

    /// Whether it says it is an ONVIF video transmitter (or says nothing of its types).
    pub fn is_video_transmitter(&self) -> bool {
        self.types.is_empty() || self.types.iter().any(|t| t == "NetworkVideoTransmitter")
    }
}

/// A message a device sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// An answer to the probe whose `MessageID` it names.
    ProbeMatches {
        /// The probe's `MessageID`.
        relates_to: String,
        /// The devices matching.
        matches: Vec<Endpoint>,
    },
    /// A device joined the network.
    Hello(Endpoint),
    /// A device leaves the network.
    Bye {
        /// Its endpoint reference.
        address: String,
    },
    /// Another message (a probe from another client, a resolve): ignored.
    Other,
}

fn endpoint(e: &Element) -> Endpoint {
    let list = |name: &str| -> Vec<String> {
        e.child(WSD, name)
            .map(|x| {
                x.text
                    .split_whitespace()
                    .take(MAX_ITEMS)
                    .map(|s| s.chars().take(512).collect())
                    .collect()
            })
            .unwrap_or_default()
    };
    Endpoint {
        address: e
            .child(WSA, "EndpointReference")
            .and_then(|r| r.child(WSA, "Address"))
            .map(|a| a.text.chars().take(256).collect())
            .unwrap_or_default(),
        types: list("Types")
            .into_iter()
            .map(|t| t.rsplit(':').next().unwrap_or_default().to_owned())
            .collect(),
        scopes: list("Scopes"),
        xaddrs: list("XAddrs"),
    }
}

/// Parses a datagram.
pub fn parse(datagram: &[u8]) -> Result<Message, LanError> {
    if datagram.len() > MAX_DATAGRAM {
        return Err(LanError::TooLarge(datagram.len()));
    }
    let root = xml::parse(datagram)?;
    if !root.is(super::onvif::SOAP, "Envelope") {
        return Err(LanError::Malformed("not a SOAP 1.2 envelope".into()));
    }
    let header = root.child(super::onvif::SOAP, "Header");
    let body = root
        .child(super::onvif::SOAP, "Body")
        .ok_or_else(|| LanError::Malformed("no SOAP Body".into()))?;
    let relates_to = header
        .and_then(|h| h.child(WSA, "RelatesTo"))
        .map(|r| r.text.clone())
        .unwrap_or_default();
    if let Some(m) = body.child(WSD, "ProbeMatches") {
        return Ok(Message::ProbeMatches {
            relates_to,
            matches: m
                .children_named(WSD, "ProbeMatch")
                .take(MAX_ITEMS)
                .map(endpoint)
                .collect(),
        });
    }
    if let Some(h) = body.child(WSD, "Hello") {
        return Ok(Message::Hello(endpoint(h)));
    }
    if let Some(b) = body.child(WSD, "Bye") {
        return Ok(Message::Bye {
            address: endpoint(b).address,
        });
    }
    Ok(Message::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_asks_for_video_transmitters() {
        let p = probe("urn:uuid:1");
        let root = xml::parse(p.as_bytes()).unwrap();
        assert_eq!(root.find(WSA, "MessageID").unwrap().text, "urn:uuid:1");
        assert_eq!(
            root.find(WSA, "Action").unwrap().text,
            format!("{WSD}/Probe")
        );
        assert_eq!(
            root.find(WSD, "Types").unwrap().text,
            "dn:NetworkVideoTransmitter"
        );
        assert_eq!(parse(p.as_bytes()).unwrap(), Message::Other);
    }

    #[test]
    fn matches_hellos_and_byes() {
        let m = r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsdd="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl" xmlns:tds="http://www.onvif.org/ver10/device/wsdl">
<SOAP-ENV:Header><wsa:MessageID>urn:uuid:2</wsa:MessageID><wsa:RelatesTo>urn:uuid:1</wsa:RelatesTo>
<wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>
<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action></SOAP-ENV:Header>
<SOAP-ENV:Body><wsdd:ProbeMatches><wsdd:ProbeMatch>
<wsa:EndpointReference><wsa:Address>urn:uuid:cam-1</wsa:Address></wsa:EndpointReference>
<wsdd:Types>dn:NetworkVideoTransmitter tds:Device</wsdd:Types>
<wsdd:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/hardware/Door%202 onvif://www.onvif.org/name/Front%20door onvif://www.onvif.org/mfr/Acme</wsdd:Scopes>
<wsdd:XAddrs>http://10.0.0.3/onvif/device_service http://[fe80::1]/onvif/device_service</wsdd:XAddrs>
<wsdd:MetadataVersion>1</wsdd:MetadataVersion></wsdd:ProbeMatch></wsdd:ProbeMatches></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;
        let Message::ProbeMatches {
            relates_to,
            matches,
        } = parse(m.as_bytes()).unwrap()
        else {
            panic!("a probe match");
        };
        assert_eq!(relates_to, "urn:uuid:1");
        let e = &matches[0];
        assert_eq!(e.address, "urn:uuid:cam-1");
        assert_eq!(e.types, ["NetworkVideoTransmitter", "Device"]);
        assert!(e.is_video_transmitter());
        assert_eq!(e.scope("hardware").as_deref(), Some("Door 2"));
        assert_eq!(e.scope("name").as_deref(), Some("Front door"));
        assert_eq!(e.scope("mfr").as_deref(), Some("Acme"));
        assert_eq!(e.scope("location"), None);
        assert_eq!(e.xaddrs.len(), 2);

        let hello = m
            .replace("wsdd:ProbeMatches>", "wsdd:Hello>")
            .replace("<wsdd:ProbeMatch>", "")
            .replace("</wsdd:ProbeMatch>", "");
        let Message::Hello(h) = parse(hello.as_bytes()).unwrap() else {
            panic!("a hello")
        };
        assert_eq!(h.address, "urn:uuid:cam-1");
        let bye = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"><s:Body><d:Bye><a:EndpointReference><a:Address>urn:uuid:cam-1</a:Address></a:EndpointReference></d:Bye></s:Body></s:Envelope>"#;
        assert_eq!(
            parse(bye.as_bytes()).unwrap(),
            Message::Bye {
                address: "urn:uuid:cam-1".into()
            }
        );
        assert!(parse(b"not xml <").is_err());
    }
}
