//! ONVIF over SOAP 1.2: the requests an edge sends a camera's device and media services, the
//! WS-Security UsernameToken (digest) that authenticates them, and the answers.
//!
//! ```text
//! edge ── POST xaddr  <Envelope><Header><Security><UsernameToken>…</Header><Body><GetProfiles/>
//!      ◀─ 200 <Envelope><Body><GetProfilesResponse><Profiles token="main">…      or
//!      ◀─ 400 <Envelope><Body><Fault><Code>Sender<Subcode>ter:NotAuthorized…
//! ```
//!
//! The digest (WS-Security UsernameToken Profile 1.0) is
//! `Base64(SHA-1(nonce ‖ created ‖ password))`, `created` being the `xs:dateTime` text sent.
//! Cameras check `created` against their own clock, so a client first asks
//! `GetSystemDateAndTime` (which needs no authentication) and sends the camera's time.
//! Elements are matched by namespace URI and local name, never by prefix.

use sha1::{Digest, Sha1};

use super::LanError;
use super::xml::{self, Element, escape};

/// SOAP 1.2 envelope namespace.
pub const SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
/// WS-Security extension namespace.
pub const WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
/// WS-Security utility namespace (`Created`).
pub const WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
/// The password type of a digest.
pub const PASSWORD_DIGEST: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest";
/// The encoding type of the nonce.
pub const BASE64_BINARY: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";
/// The device service.
pub const TDS: &str = "http://www.onvif.org/ver10/device/wsdl";
/// The media service (version 1).
pub const TRT: &str = "http://www.onvif.org/ver10/media/wsdl";
/// ONVIF's schema types.
pub const TT: &str = "http://www.onvif.org/ver10/schema";

/// A UsernameToken: what the `Security` header carries.
#[derive(Clone, PartialEq, Eq)]
pub struct UsernameToken {
    /// The user name.
    pub username: String,
    /// `Base64(SHA-1(nonce ‖ created ‖ password))`.
    pub digest: String,
    /// The nonce, base64.
    pub nonce: String,
    /// The creation time sent, `xs:dateTime`.
    pub created: String,
}

impl std::fmt::Debug for UsernameToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsernameToken")
            .field("username", &self.username)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// The password digest of WS-Security's UsernameToken Profile.
pub fn password_digest(nonce: &[u8], created: &str, password: &str) -> String {
    let mut h = Sha1::new();
    h.update(nonce);
    h.update(created.as_bytes());
    h.update(password.as_bytes());
    data_encoding::BASE64.encode(&h.finalize())
}

impl UsernameToken {
    /// A token for `username`/`password` made at `camera_time_ms` (the camera's clock, Unix
    /// ms) with a fresh random `nonce`.
    pub fn new(username: &str, password: &str, nonce: &[u8; 16], camera_time_ms: u64) -> Self {
        let created = super::time::xs_date_time(camera_time_ms);
        UsernameToken {
            username: username.to_owned(),
            digest: password_digest(nonce, &created, password),
            nonce: data_encoding::BASE64.encode(nonce),
            created,
        }
    }

    fn header(&self) -> String {
        format!(
            "<wsse:Security s:mustUnderstand=\"1\"><wsse:UsernameToken>\
             <wsse:Username>{}</wsse:Username>\
             <wsse:Password Type=\"{PASSWORD_DIGEST}\">{}</wsse:Password>\
             <wsse:Nonce EncodingType=\"{BASE64_BINARY}\">{}</wsse:Nonce>\
             <wsu:Created>{}</wsu:Created>\
             </wsse:UsernameToken></wsse:Security>",
            escape(&self.username),
            self.digest,
            self.nonce,
            self.created
        )
    }
}

/// An operation the edge asks of a camera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `tds:GetSystemDateAndTime` (no authentication needed).
    SystemDateAndTime,
    /// `tds:GetCapabilities` (no authentication needed): where the media service is.
    Capabilities,
    /// `tds:GetDeviceInformation`: maker, model, firmware.
    DeviceInformation,
    /// `trt:GetProfiles`.
    Profiles,
    /// `trt:GetStreamUri` of a profile, RTP over RTSP, unicast.
    StreamUri(String),
    /// `trt:GetSnapshotUri` of a profile.
    SnapshotUri(String),
}

impl Request {
    /// Whether it goes to the media service (else the device service).
    pub fn is_media(&self) -> bool {
        matches!(
            self,
            Request::Profiles | Request::StreamUri(_) | Request::SnapshotUri(_)
        )
    }

    /// The SOAP action (for the `action` parameter of the content type).
    pub fn action(&self) -> &'static str {
        match self {
            Request::SystemDateAndTime => {
                "http://www.onvif.org/ver10/device/wsdl/GetSystemDateAndTime"
            }
            Request::Capabilities => "http://www.onvif.org/ver10/device/wsdl/GetCapabilities",
            Request::DeviceInformation => {
                "http://www.onvif.org/ver10/device/wsdl/GetDeviceInformation"
            }
            Request::Profiles => "http://www.onvif.org/ver10/media/wsdl/GetProfiles",
            Request::StreamUri(_) => "http://www.onvif.org/ver10/media/wsdl/GetStreamUri",
            Request::SnapshotUri(_) => "http://www.onvif.org/ver10/media/wsdl/GetSnapshotUri",
        }
    }

    fn body(&self) -> String {
        match self {
            Request::SystemDateAndTime => "<tds:GetSystemDateAndTime/>".into(),
            Request::Capabilities => {
                "<tds:GetCapabilities><tds:Category>All</tds:Category></tds:GetCapabilities>".into()
            }
            Request::DeviceInformation => "<tds:GetDeviceInformation/>".into(),
            Request::Profiles => "<trt:GetProfiles/>".into(),
            Request::StreamUri(p) => format!(
                "<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream>\
                 <tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup>\
                 <trt:ProfileToken>{}</trt:ProfileToken></trt:GetStreamUri>",
                escape(p)
            ),
            Request::SnapshotUri(p) => format!(
                "<trt:GetSnapshotUri><trt:ProfileToken>{}</trt:ProfileToken></trt:GetSnapshotUri>",
                escape(p)
            ),
        }
    }

    /// The whole envelope, with the token's `Security` header when given.
    pub fn envelope(&self, token: Option<&UsernameToken>) -> String {
        let header = token.map(UsernameToken::header).unwrap_or_default();
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <s:Envelope xmlns:s=\"{SOAP}\" xmlns:wsse=\"{WSSE}\" xmlns:wsu=\"{WSU}\" \
             xmlns:tds=\"{TDS}\" xmlns:trt=\"{TRT}\" xmlns:tt=\"{TT}\">\
             <s:Header>{header}</s:Header><s:Body>{}</s:Body></s:Envelope>",
            self.body()
        )
    }
}

/// The `Body` of an answer, or the fault it carries.
pub fn body(doc: &[u8]) -> Result<Element, LanError> {
    let root = xml::parse(doc)?;
    if !root.is(SOAP, "Envelope") {
        return Err(LanError::Malformed(format!(
            "not a SOAP 1.2 envelope (root {})",
            root.name
        )));
    }
    let body = root
        .child(SOAP, "Body")
        .ok_or_else(|| LanError::Malformed("no SOAP Body".into()))?;
    if let Some(f) = body.child(SOAP, "Fault") {
        return Err(fault(f));
    }
    Ok(body.clone())
}

fn local_of(qname: &str) -> String {
    qname
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn fault(f: &Element) -> LanError {
    let code = f.child(SOAP, "Code");
    let mut subcode = String::new();
    let mut at = code.and_then(|c| c.child(SOAP, "Subcode"));
    while let Some(s) = at {
        if let Some(v) = s.child(SOAP, "Value") {
            subcode = local_of(&v.text);
        }
        at = s.child(SOAP, "Subcode");
    }
    LanError::Fault {
        code: code
            .and_then(|c| c.child(SOAP, "Value"))
            .map(|v| local_of(&v.text))
            .unwrap_or_default(),
        subcode,
        reason: f
            .child(SOAP, "Reason")
            .and_then(|r| r.child(SOAP, "Text"))
            .map(|t| t.text.chars().take(200).collect())
            .unwrap_or_default(),
    }
}

fn missing(what: &str) -> LanError {
    LanError::Malformed(format!("no {what} in the answer"))
}

fn response<'a>(body: &'a Element, ns: &str, name: &str) -> Result<&'a Element, LanError> {
    body.child(ns, name).ok_or_else(|| missing(name))
}

/// `GetSystemDateAndTime`: the camera's UTC time, Unix ms.
pub fn parse_date_time(doc: &[u8]) -> Result<u64, LanError> {
    let b = body(doc)?;
    let r = response(&b, TDS, "GetSystemDateAndTimeResponse")?;
    let utc = r
        .find(TT, "UTCDateTime")
        .ok_or_else(|| missing("UTCDateTime"))?;
    let num = |path: &[&str]| -> Result<i64, LanError> {
        utc.text_at(path)
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| missing(&path.join("/")))
    };
    let secs = super::time::unix_secs(
        num(&["Date", "Year"])?,
        num(&["Date", "Month"])? as u32,
        num(&["Date", "Day"])? as u32,
        num(&["Time", "Hour"])? as u32,
        num(&["Time", "Minute"])? as u32,
        num(&["Time", "Second"])? as u32,
    )
    .ok_or_else(|| LanError::Malformed("the camera's date is out of range".into()))?;
    Ok(secs as u64 * 1000)
}

/// `GetCapabilities`: the media service's address, if the camera has one.
pub fn parse_media_xaddr(doc: &[u8]) -> Result<Option<String>, LanError> {
    let b = body(doc)?;
    let r = response(&b, TDS, "GetCapabilitiesResponse")?;
    Ok(r.find(TT, "Media")
        .and_then(|m| m.child(TT, "XAddr"))
        .map(|x| x.text.clone())
        .filter(|x| !x.is_empty()))
}

/// What `GetDeviceInformation` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInformation {
    /// The maker.
    pub manufacturer: String,
    /// The model.
    pub model: String,
    /// Firmware version.
    pub firmware: String,
    /// Serial number.
    pub serial: String,
}

fn short(s: Option<&str>) -> String {
    s.unwrap_or_default().chars().take(128).collect()
}

/// `GetDeviceInformation`.
pub fn parse_device_information(doc: &[u8]) -> Result<DeviceInformation, LanError> {
    let b = body(doc)?;
    let r = response(&b, TDS, "GetDeviceInformationResponse")?;
    Ok(DeviceInformation {
        manufacturer: short(r.text_at(&["Manufacturer"])),
        model: short(r.text_at(&["Model"])),
        firmware: short(r.text_at(&["FirmwareVersion"])),
        serial: short(r.text_at(&["SerialNumber"])),
    })
}

/// A media profile: a stream the camera offers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaProfile {
    /// Its token (what `GetStreamUri` names).
    pub token: String,
    /// Its name.
    pub name: String,
    /// The encoding (`H264`, `H265`, `JPEG`, ...), if it has a video encoder.
    pub encoding: Option<String>,
    /// Width, pixels.
    pub width: Option<u32>,
    /// Height, pixels.
    pub height: Option<u32>,
    /// Frames per second (the encoder's limit).
    pub fps: Option<u32>,
    /// Bitrate limit, kbit/s.
    pub bitrate_kbps: Option<u32>,
}

/// At most this many profiles are read.
pub const MAX_PROFILES: usize = 32;

/// `GetProfiles`.
pub fn parse_profiles(doc: &[u8]) -> Result<Vec<MediaProfile>, LanError> {
    let b = body(doc)?;
    let r = response(&b, TRT, "GetProfilesResponse")?;
    let num = |e: &Element, path: &[&str]| e.text_at(path).and_then(|t| t.trim().parse().ok());
    Ok(r.children_named(TRT, "Profiles")
        .take(MAX_PROFILES)
        .map(|p| {
            let venc = p.child(TT, "VideoEncoderConfiguration");
            MediaProfile {
                token: short(p.attr("token")),
                name: short(p.text_at(&["Name"])),
                encoding: venc
                    .and_then(|v| v.text_at(&["Encoding"]))
                    .map(|e| short(Some(e))),
                width: venc.and_then(|v| num(v, &["Resolution", "Width"])),
                height: venc.and_then(|v| num(v, &["Resolution", "Height"])),
                fps: venc.and_then(|v| num(v, &["RateControl", "FrameRateLimit"])),
                bitrate_kbps: venc.and_then(|v| num(v, &["RateControl", "BitrateLimit"])),
            }
        })
        .filter(|p| !p.token.is_empty())
        .collect())
}

/// `GetStreamUri` or `GetSnapshotUri`: the URI.
pub fn parse_uri(doc: &[u8]) -> Result<String, LanError> {
    let b = body(doc)?;
    let uri = b
        .find(TT, "Uri")
        .map(|u| u.text.clone())
        .filter(|u| !u.is_empty())
        .ok_or_else(|| missing("Uri"))?;
    if uri.len() > 2048 || uri.chars().any(char::is_control) {
        return Err(LanError::Malformed("the URI is unusable".into()));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_the_profile_s_example() {
        // WS-Security UsernameToken Profile 1.0, the worked example used by ONVIF clients:
        // nonce "LKqI6G/AikKCQrN0zqZFlg==", created "2010-09-16T07:50:45Z", password
        // "userpassword" → "tuOSpGlFlIXsozq4HFNeeGeFLEI=".
        let nonce = data_encoding::BASE64
            .decode(b"LKqI6G/AikKCQrN0zqZFlg==")
            .unwrap();
        assert_eq!(
            password_digest(&nonce, "2010-09-16T07:50:45Z", "userpassword"),
            "tuOSpGlFlIXsozq4HFNeeGeFLEI="
        );
    }

    #[test]
    fn a_request_carries_the_token_and_no_password() {
        let token = UsernameToken::new("admin", "hunter2", &[7; 16], 1_796_642_080_000);
        assert_eq!(token.created, "2026-12-07T11:14:40Z");
        let env = Request::StreamUri("main&<x>".into()).envelope(Some(&token));
        assert!(!env.contains("hunter2"));
        assert!(!format!("{token:?}").contains(&token.digest));
        let root = xml::parse(env.as_bytes()).unwrap();
        let ut = root.find(WSSE, "UsernameToken").unwrap();
        assert_eq!(ut.text_at(&["Username"]), Some("admin"));
        assert_eq!(
            ut.child(WSSE, "Password").unwrap().attr("Type"),
            Some(PASSWORD_DIGEST)
        );
        assert_eq!(ut.child(WSU, "Created").unwrap().text, token.created);
        let nonce = data_encoding::BASE64
            .decode(ut.text_at(&["Nonce"]).unwrap().as_bytes())
            .unwrap();
        assert_eq!(
            password_digest(&nonce, &token.created, "hunter2"),
            ut.text_at(&["Password"]).unwrap()
        );
        assert_eq!(
            root.find(TRT, "ProfileToken").unwrap().text,
            "main&<x>",
            "escaped and read back"
        );
        assert!(Request::Profiles.is_media() && !Request::DeviceInformation.is_media());
        assert!(
            !Request::SystemDateAndTime
                .envelope(None)
                .contains("Security")
        );
    }

    const PROFILES: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:m="http://www.onvif.org/ver10/media/wsdl" xmlns:s="http://www.onvif.org/ver10/schema">
 <env:Body><m:GetProfilesResponse>
  <m:Profiles token="Profile_1" fixed="true"><s:Name>mainStream</s:Name>
   <s:VideoSourceConfiguration token="V"><s:Name>V</s:Name><s:Bounds x="0" y="0" width="1920" height="1080"/></s:VideoSourceConfiguration>
   <s:VideoEncoderConfiguration token="E1"><s:Name>E1</s:Name><s:Encoding>H264</s:Encoding>
    <s:Resolution><s:Width>1920</s:Width><s:Height>1080</s:Height></s:Resolution><s:Quality>5</s:Quality>
    <s:RateControl><s:FrameRateLimit>25</s:FrameRateLimit><s:EncodingInterval>1</s:EncodingInterval><s:BitrateLimit>4096</s:BitrateLimit></s:RateControl>
   </s:VideoEncoderConfiguration></m:Profiles>
  <m:Profiles token="Profile_2"><s:Name>subStream</s:Name>
   <s:VideoEncoderConfiguration token="E2"><s:Encoding>H264</s:Encoding>
    <s:Resolution><s:Width>640</s:Width><s:Height>360</s:Height></s:Resolution>
    <s:RateControl><s:FrameRateLimit>10</s:FrameRateLimit></s:RateControl></s:VideoEncoderConfiguration></m:Profiles>
  <m:Profiles token="Audio"><s:Name>audio only</s:Name></m:Profiles>
 </m:GetProfilesResponse></env:Body></env:Envelope>"#;

    #[test]
    fn profiles_under_any_prefix() {
        let p = parse_profiles(PROFILES.as_bytes()).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(
            p[0],
            MediaProfile {
                token: "Profile_1".into(),
                name: "mainStream".into(),
                encoding: Some("H264".into()),
                width: Some(1920),
                height: Some(1080),
                fps: Some(25),
                bitrate_kbps: Some(4096),
            }
        );
        assert_eq!(
            (p[1].width, p[1].height, p[1].fps),
            (Some(640), Some(360), Some(10))
        );
        assert_eq!(p[2].encoding, None);
    }

    #[test]
    fn faults_say_whether_the_credentials_were_refused() {
        let fault = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:ter="http://www.onvif.org/ver10/error">
          <s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>ter:NotAuthorized</s:Value></s:Subcode></s:Code>
          <s:Reason><s:Text xml:lang="en">Sender not Authorized</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>"#;
        let e = parse_profiles(fault.as_bytes()).unwrap_err();
        assert!(e.is_unauthorized(), "{e}");
        assert_eq!(
            e.to_string(),
            "the camera answered a fault: Sender not Authorized (Sender, NotAuthorized)"
        );
        let other = fault.replace("ter:NotAuthorized", "ter:ActionNotSupported");
        assert!(!parse_uri(other.as_bytes()).unwrap_err().is_unauthorized());
        assert!(matches!(
            parse_uri(b"<html>nope</html>"),
            Err(LanError::Malformed(_))
        ));
    }

    #[test]
    fn date_time_capabilities_information_and_uri() {
        let dt = r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:d="http://www.onvif.org/ver10/device/wsdl" xmlns:t="http://www.onvif.org/ver10/schema"><e:Body>
          <d:GetSystemDateAndTimeResponse><d:SystemDateAndTime><t:DateTimeType>NTP</t:DateTimeType>
          <t:UTCDateTime><t:Time><t:Hour>11</t:Hour><t:Minute>14</t:Minute><t:Second>40</t:Second></t:Time>
          <t:Date><t:Year>2026</t:Year><t:Month>12</t:Month><t:Day>7</t:Day></t:Date></t:UTCDateTime>
          </d:SystemDateAndTime></d:GetSystemDateAndTimeResponse></e:Body></e:Envelope>"#;
        assert_eq!(parse_date_time(dt.as_bytes()).unwrap(), 1_796_642_080_000);
        let caps = r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:d="http://www.onvif.org/ver10/device/wsdl" xmlns:t="http://www.onvif.org/ver10/schema"><e:Body>
          <d:GetCapabilitiesResponse><d:Capabilities><t:Device><t:XAddr>http://h/onvif/device_service</t:XAddr></t:Device>
          <t:Media><t:XAddr>http://h/onvif/Media</t:XAddr></t:Media></d:Capabilities></d:GetCapabilitiesResponse></e:Body></e:Envelope>"#;
        assert_eq!(
            parse_media_xaddr(caps.as_bytes()).unwrap().as_deref(),
            Some("http://h/onvif/Media")
        );
        let info = r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:d="http://www.onvif.org/ver10/device/wsdl"><e:Body>
          <d:GetDeviceInformationResponse><d:Manufacturer>Acme</d:Manufacturer><d:Model>Door 2</d:Model>
          <d:FirmwareVersion>1.2</d:FirmwareVersion><d:SerialNumber>S1</d:SerialNumber><d:HardwareId>H</d:HardwareId>
          </d:GetDeviceInformationResponse></e:Body></e:Envelope>"#;
        let i = parse_device_information(info.as_bytes()).unwrap();
        assert_eq!(
            (i.manufacturer.as_str(), i.model.as_str()),
            ("Acme", "Door 2")
        );
        let uri = r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:m="http://www.onvif.org/ver10/media/wsdl" xmlns:t="http://www.onvif.org/ver10/schema"><e:Body>
          <m:GetStreamUriResponse><m:MediaUri><t:Uri>rtsp://10.0.0.3:554/cam/realmonitor?channel=1&amp;subtype=0</t:Uri>
          <t:InvalidAfterConnect>false</t:InvalidAfterConnect></m:MediaUri></m:GetStreamUriResponse></e:Body></e:Envelope>"#;
        assert_eq!(
            parse_uri(uri.as_bytes()).unwrap(),
            "rtsp://10.0.0.3:554/cam/realmonitor?channel=1&subtype=0"
        );
    }
}
