//! wg-quick configurations: what an owner's device (the official WireGuard apps, `wg-quick`)
//! imports to join the overlay through the vm. Pure.

use crate::addressing::{OverlayPrefixes, PeerAddresses};
use crate::keys::{PublicKey, SecretKey};

/// What a device's configuration says.
pub struct DeviceConfig<'a> {
    /// The device's own private key (made on the owner's machine).
    pub private_key: &'a SecretKey,
    /// Its overlay addresses.
    pub addresses: PeerAddresses,
    /// The vm's WireGuard public key.
    pub vm_public_key: PublicKey,
    /// The vm's UDP endpoint, `host:port`.
    pub endpoint: &'a str,
    /// The overlay (routed through the vm: the vm and every edge).
    pub prefixes: OverlayPrefixes,
    /// Persistent keepalive, seconds.
    pub keepalive_secs: u16,
}

impl DeviceConfig<'_> {
    /// The wg-quick text.
    pub fn render(&self) -> String {
        format!(
            "[Interface]\n\
             PrivateKey = {}\n\
             Address = {}/128, {}/32\n\
             \n\
             [Peer]\n\
             PublicKey = {}\n\
             Endpoint = {}\n\
             AllowedIPs = {}\n\
             PersistentKeepalive = {}\n",
            self.private_key.to_base64(),
            self.addresses.v6,
            self.addresses.v4,
            self.vm_public_key,
            self.endpoint,
            self.prefixes.cidrs().join(", "),
            self.keepalive_secs,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_config_in_wg_quick_form() {
        let p = OverlayPrefixes::new("t", "fd12:3456:789a::/64", "10.77.0.0/16").unwrap();
        let key = SecretKey::from_bytes([7; 32]);
        let vm = SecretKey::from_bytes([9; 32]).public();
        let text = DeviceConfig {
            private_key: &key,
            addresses: p.peer(2).unwrap(),
            vm_public_key: vm,
            endpoint: "vm.example.org:51820",
            prefixes: p,
            keepalive_secs: 25,
        }
        .render();
        assert_eq!(
            text,
            format!(
                "[Interface]\nPrivateKey = {}\nAddress = fd12:3456:789a::3/128, 10.77.0.3/32\n\n\
                 [Peer]\nPublicKey = {}\nEndpoint = vm.example.org:51820\n\
                 AllowedIPs = fd12:3456:789a::/64, 10.77.0.0/16\nPersistentKeepalive = 25\n",
                key.to_base64(),
                vm.to_base64()
            )
        );
    }
}
