//! Shared bodies of the fuzz targets: each decoder must return a value or a typed error for
//! any input, and anything it accepts must re-encode to bytes it accepts again as the same
//! value.

pub use guardian_protocols::codec;
pub use guardian_protocols::messages::{
    archive, clips, config, discovery, enroll, events, telemetry, thumbnails, wg,
};

use guardian_protocols::WireMessage;

/// Decode; if accepted, re-encode and decode again to the same value.
pub fn round_trip<M: WireMessage + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(m) = codec::decode::<M>(data) {
        let again = codec::encode(&m).expect("an accepted message re-encodes within its limit");
        assert_eq!(
            codec::decode::<M>(&again).expect("re-encoded message decodes"),
            m
        );
    }
}

/// Read frames of several types from one byte stream until it ends or errs.
pub fn frames(data: &[u8]) {
    let mut input = data;
    futures::executor::block_on(async {
        for _ in 0..16 {
            if codec::read_frame::<events::EventBatch, _>(&mut input)
                .await
                .is_err()
            {
                break;
            }
            if codec::read_frame::<archive::ObjectHeader, _>(&mut input)
                .await
                .is_err()
            {
                break;
            }
        }
    });
}

/// Parse and verify a manifest against a fixed key.
pub fn manifest(data: &[u8]) {
    if let Ok(m) = guardian_protocols::Manifest::from_json(data) {
        let key = ed25519_key();
        let _ = m.verify_signature(&key);
        let _ = m.verify_object(guardian_protocols::ObjectKind::Clip, data);
        // Canonical bytes of an accepted manifest parse back to the same manifest.
        let canon = m.canonical_bytes();
        let back = guardian_protocols::Manifest::from_json(&canon).expect("canonical parses");
        assert_eq!(back.canonical_bytes(), canon);
    }
}

fn ed25519_key() -> ed25519_dalek::VerifyingKey {
    guardian_protocols::signed::parse_public_key(
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    )
    .expect("RFC 8032 test key 1")
}

/// Open arbitrary bytes with a fixed identity.
pub fn open(data: &[u8]) {
    // A throwaway key made for the fuzzer with age-keygen; it protects nothing.
    let id: age::x25519::Identity =
        "AGE-SECRET-KEY-1VP8KQPADQURW2U8SVE7HLEVGX4PY98RJCZ225SERX5YC6GURNNQQ66XN6A"
            .parse()
            .expect("a valid identity");
    let _ = guardian_protocols::seal::open(data, std::io::sink(), &id);
}

/// A key-slot list body: decode, validate, and the edge's check under a fixed key.
pub fn key_slot_list(data: &[u8]) {
    use guardian_protocols::key_slots::{KeySlotList, accept};
    use guardian_protocols::signed::Signed;
    let signed = Signed::<KeySlotList>::from_parts(data.to_vec(), vec![0; 64]);
    if let Ok(list) = signed.peek() {
        let _ = list.validate();
    }
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    assert!(
        accept(&signed, Some(&key), "t", 0, None).is_err(),
        "an unsigned list is never accepted"
    );
}

/// The HTTP inputs: a `Range` header resolved against a size taken from the input, both
/// query strings (and the playback token inside `?token=`), and the path segments (a CID,
/// an id). Whatever they accept is within its bounds.
pub fn http_inputs(data: &[u8]) {
    use guardian_protocols::http::{query, range};
    let (size, text) = match data.split_first_chunk::<8>() {
        Some((n, rest)) => (u64::from_le_bytes(*n), rest),
        None => (0, data),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    if let Ok(r) = range::parse(text)
        && let Ok(s) = r.resolve(size)
    {
        assert!(s.first <= s.last && s.last < size && s.len() <= size);
    }
    if let Ok(l) = query::listing(text) {
        assert!(l.since <= query::MAX_SINCE_MS);
        assert!((1..=query::MAX_LIMIT).contains(&l.limit));
    }
    if let Ok(Some(t)) = query::token(text)
        && let Ok(signed) = clips::decode_token(&t)
    {
        let _ = signed.peek();
    }
    // Path segments: an archived object's CID, an event id.
    let _ = text.parse::<guardian_protocols::ContentId>();
    let _ = guardian_protocols::messages::valid_id(text);
}

/// A decoded camera change report's cameras through the check and the URL helpers: no panic
/// whatever they hold, and a URL split of its user information has none left.
pub fn camera_checks(data: &[u8]) {
    let Ok(report) = codec::decode::<config::CameraChanges>(data) else {
        return;
    };
    for c in &report.upserts {
        let _ = c.validate();
        let parts = guardian_protocols::credential::split_userinfo(&c.url);
        assert!(guardian_protocols::credential::split_userinfo(&parts.url).username.is_none());
        let _ = guardian_protocols::credential::host(&c.url);
    }
}

/// What cameras on the LAN send the edge: SOAP answers (every ONVIF parser, and faults),
/// WS-Discovery datagrams, RTSP responses with their SDP, and H.264 parameter sets. Whatever
/// they accept stays within its bounds.
pub fn lan_answers(data: &[u8]) {
    use guardian_protocols::lan::{onvif, rtsp, wsd};
    let _ = onvif::parse_date_time(data);
    let _ = onvif::parse_media_xaddr(data);
    let _ = onvif::parse_device_information(data);
    if let Ok(p) = onvif::parse_profiles(data) {
        assert!(p.len() <= onvif::MAX_PROFILES);
    }
    if let Ok(u) = onvif::parse_uri(data) {
        assert!(u.len() <= 2048);
    }
    if let Ok(wsd::Message::ProbeMatches { matches, .. }) = wsd::parse(data) {
        assert!(matches.len() <= 64);
        for m in &matches {
            let _ = m.scope("hardware");
        }
    }
    if let Ok(Some((r, used))) = rtsp::parse_response(data) {
        assert!(used <= data.len());
        let _ = r.auth_schemes();
        let _ = rtsp::parse_sdp(&String::from_utf8_lossy(&r.body));
    }
    if let Some((w, h)) = rtsp::h264_sps_size(data) {
        assert!(w > 0 && h > 0 && w <= 16384 && h <= 16384);
    }
}
