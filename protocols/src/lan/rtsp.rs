//! RTSP/1.0 as a probe speaks it: a request (`OPTIONS`, `DESCRIBE`), a response (status,
//! headers, a body of `Content-Length`), the SDP a `DESCRIBE` returns, and the picture size in
//! an H.264 sequence parameter set (from `sprop-parameter-sets`), for cameras that do not
//! state it.

use super::LanError;

/// The largest response head and body accepted.
pub const MAX_RESPONSE: usize = 64 * 1024;

/// A request: `METHOD url RTSP/1.0`, `CSeq`, a user agent, `Accept` for `DESCRIBE`.
pub fn request(method: &str, url: &str, cseq: u32) -> String {
    let accept = if method == "DESCRIBE" {
        "Accept: application/sdp\r\n"
    } else {
        ""
    };
    format!("{method} {url} RTSP/1.0\r\nCSeq: {cseq}\r\nUser-Agent: guardian-edge\r\n{accept}\r\n")
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value by name, any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The authentication schemes the camera asks for (`Digest`, `Basic`).
    pub fn auth_schemes(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("WWW-Authenticate"))
            .filter_map(|(_, v)| v.split_whitespace().next().map(str::to_owned))
            .collect()
    }
}

fn bad(m: &str) -> LanError {
    LanError::Malformed(format!("RTSP: {m}"))
}

/// Parses a response from the start of `buf`: `None` while it is incomplete, else the
/// response and the bytes it took.
pub fn parse_response(buf: &[u8]) -> Result<Option<(Response, usize)>, LanError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_RESPONSE {
            return Err(LanError::TooLarge(buf.len()));
        }
        if buf.len() >= 5 && !buf.starts_with(b"RTSP/") {
            return Err(bad("not an RTSP response"));
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| bad("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("RTSP/1.") {
        return Err(bad("not an RTSP/1.x response"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| bad("bad status"))?;
    let mut headers = Vec::new();
    for l in lines {
        let (k, v) = l.split_once(':').ok_or_else(|| bad("bad header"))?;
        if headers.len() >= 64 {
            return Err(bad("too many headers"));
        }
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let mut r = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let len: usize = match r.header("Content-Length") {
        Some(v) => v.parse().map_err(|_| bad("bad Content-Length"))?,
        None => 0,
    };
    let start = end + 4;
    if len > MAX_RESPONSE {
        return Err(LanError::TooLarge(len));
    }
    if buf.len() < start + len {
        return Ok(None);
    }
    r.body = buf[start..start + len].to_vec();
    Ok(Some((r, start + len)))
}

/// One media section of an SDP.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SdpMedia {
    /// `video`, `audio`, ...
    pub kind: String,
    /// The first payload's encoding name (`H264`, `H265`, `JPEG`).
    pub encoding: Option<String>,
    /// Width and height, from `a=x-dimensions`, `a=framesize`, `a=cliprect` or the H.264
    /// sequence parameter set.
    pub size: Option<(u32, u32)>,
    /// `a=framerate`.
    pub fps: Option<f64>,
    /// `b=AS`, kbit/s.
    pub bitrate_kbps: Option<u32>,
}

/// The media sections of an SDP.
pub fn parse_sdp(sdp: &str) -> Vec<SdpMedia> {
    let mut out: Vec<SdpMedia> = Vec::new();
    let mut payload = String::new();
    for line in sdp.lines().take(512) {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
            let mut f = m.split_whitespace();
            let kind = f.next().unwrap_or_default().to_owned();
            payload = f.nth(2).unwrap_or_default().to_owned();
            if out.len() >= 16 {
                break;
            }
            out.push(SdpMedia {
                kind,
                ..Default::default()
            });
            continue;
        }
        let Some(media) = out.last_mut() else {
            continue;
        };
        if let Some(v) = line.strip_prefix("b=AS:") {
            media.bitrate_kbps = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("a=rtpmap:") {
            let (pt, rest) = v.split_once(' ').unwrap_or((v, ""));
            if pt == payload && media.encoding.is_none() {
                media.encoding = rest.split('/').next().map(|e| e.to_ascii_uppercase());
            }
        } else if let Some(v) = line.strip_prefix("a=framerate:") {
            media.fps = v
                .trim()
                .parse()
                .ok()
                .filter(|f: &f64| f.is_finite() && *f > 0.0);
        } else if let Some(v) = line.strip_prefix("a=x-dimensions:") {
            media.size = media.size.or_else(|| pair(v, ','));
        } else if let Some(v) = line.strip_prefix("a=framesize:") {
            let v = v.split_once(' ').map_or(v, |(_, s)| s);
            media.size = media.size.or_else(|| pair(v, '-'));
        } else if let Some(v) = line.strip_prefix("a=cliprect:") {
            let n: Vec<u32> = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
            if let [_, _, h, w] = n[..] {
                media.size = media.size.or(Some((w, h)));
            }
        } else if let Some(v) = line.strip_prefix("a=fmtp:") {
            let params = v.split_once(' ').map_or("", |(_, p)| p);
            for p in params.split(';') {
                if let Some(sets) = p.trim().strip_prefix("sprop-parameter-sets=") {
                    let sps = sets.split(',').next().unwrap_or_default();
                    if media.size.is_none()
                        && let Ok(nal) = data_encoding::BASE64.decode(sps.trim().as_bytes())
                    {
                        media.size = h264_sps_size(&nal);
                    }
                }
            }
        }
    }
    out
}

fn pair(v: &str, sep: char) -> Option<(u32, u32)> {
    let (a, b) = v.trim().split_once(sep)?;
    let (w, h) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (w > 0 && h > 0 && w <= 16384 && h <= 16384).then_some((w, h))
}

/// Reads bits of an RBSP (emulation prevention bytes removed).
struct Bits {
    data: Vec<u8>,
    pos: usize,
}

impl Bits {
    fn new(nal: &[u8]) -> Bits {
        let mut data = Vec::with_capacity(nal.len());
        let mut zeros = 0;
        for &b in nal {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            data.push(b);
        }
        Bits { data, pos: 0 }
    }

    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0, |acc, _| Some((acc << 1) | self.bit()?))
    }

    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        Some(if k % 2 == 1 {
            k.div_ceil(2) as i32
        } else {
            -((k / 2) as i32)
        })
    }
}

/// Width and height of an H.264 sequence parameter set NAL unit (its header byte first),
/// after cropping (ITU-T H.264 7.3.2.1.1).
pub fn h264_sps_size(nal: &[u8]) -> Option<(u32, u32)> {
    if nal.first()? & 0x1f != 7 || nal.len() > 1024 {
        return None;
    }
    let mut r = Bits::new(&nal[1..]);
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut chroma = 1;
    let mut separate_planes = 0;
    if [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].contains(&profile) {
        chroma = r.ue()?;
        if chroma > 3 {
            return None;
        }
        if chroma == 3 {
            separate_planes = r.bit()?;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            for i in 0..(if chroma == 3 { 12 } else { 8 }) {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i32, 8i32);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256) % 256;
                        }
                        last = if next == 0 { last } else { next };
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            let n = r.ue()?;
            if n > 255 {
                return None;
            }
            for _ in 0..n {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let w_mbs = r.ue()? + 1;
    let h_units = r.ue()? + 1;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.bit()?;
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut cl, mut cr, mut ct, mut cb) = (0, 0, 0, 0);
    if r.bit()? == 1 {
        (cl, cr, ct, cb) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
    }
    let array_type = if separate_planes == 1 { 0 } else { chroma };
    let (sub_w, sub_h) = match array_type {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let (unit_x, unit_y) = if array_type == 0 {
        (1, 2 - frame_mbs_only)
    } else {
        (sub_w, sub_h * (2 - frame_mbs_only))
    };
    let w = (w_mbs.checked_mul(16)?).checked_sub((cl + cr).checked_mul(unit_x)?)?;
    let h = ((2 - frame_mbs_only) * h_units.checked_mul(16)?)
        .checked_sub((ct + cb).checked_mul(unit_y)?)?;
    (w > 0 && h > 0 && w <= 16384 && h <= 16384).then_some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sps(b64: &str) -> Option<(u32, u32)> {
        h264_sps_size(&data_encoding::BASE64.decode(b64.as_bytes()).unwrap())
    }

    #[test]
    fn sizes_of_x264_parameter_sets() {
        // From `x264enc ! rtph264pay` (sprop-parameter-sets) at these sizes: High profile
        // 4:2:0 with 1080 cropped from 1088, and High 4:4:4.
        assert_eq!(
            sps("Z2QAKKzZQHgCJ+XAWoCAgKAAAAMAIAAAB5HjBjLA"),
            Some((1920, 1080))
        );
        assert_eq!(
            sps("Z2QAHqzZQKAv+XAWoMDA1KAAAAMAIAAAB5HixbLA"),
            Some((640, 360))
        );
        assert_eq!(
            sps("Z2QAH6zZQFAFuwFqAgICgAAAAwCAAAAeR4wYyw=="),
            Some((1280, 720))
        );
        assert_eq!(
            sps("Z/QAKJGbKA8ARPxOAtQEBAUAAAMAAQAAAwA8jxgxlg=="),
            Some((1920, 1080))
        );
        assert_eq!(sps("aOvssiw="), None, "a picture parameter set");
        assert_eq!(h264_sps_size(&[0x67]), None);
        assert_eq!(h264_sps_size(&[0x67, 0x64, 0, 0x28, 0xff, 0xff]), None);
    }

    #[test]
    fn responses_and_sdp() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.3\r\ns=cam\r\nm=video 0 RTP/AVP 96\r\nb=AS:2048\r\n\
                   a=rtpmap:96 H264/90000\r\na=framerate:15\r\n\
                   a=fmtp:96 packetization-mode=1;profile-level-id=640028;sprop-parameter-sets=Z2QAKKzZQHgCJ+XAWoCAgKAAAAMAIAAAB5HjBjLA,aOvssiw=\r\n\
                   a=control:stream=0\r\nm=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        let raw = format!(
            "RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}RTSP/1.0 2",
            sdp.len()
        );
        assert_eq!(parse_response(&raw.as_bytes()[..40]).unwrap(), None);
        let (r, used) = parse_response(raw.as_bytes()).unwrap().unwrap();
        assert_eq!(used, raw.len() - "RTSP/1.0 2".len());
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/sdp"));
        let media = parse_sdp(std::str::from_utf8(&r.body).unwrap());
        assert_eq!(
            media[0],
            SdpMedia {
                kind: "video".into(),
                encoding: Some("H264".into()),
                size: Some((1920, 1080)),
                fps: Some(15.0),
                bitrate_kbps: Some(2048),
            }
        );
        assert_eq!(media[1].encoding.as_deref(), Some("PCMU"));
        let mjpeg = parse_sdp(
            "m=video 0 RTP/AVP 26\r\na=rtpmap:26 JPEG/90000\r\na=x-dimensions:640,480\r\n",
        );
        assert_eq!(
            (mjpeg[0].encoding.as_deref(), mjpeg[0].size),
            (Some("JPEG"), Some((640, 480)))
        );

        let auth = b"RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Digest realm=\"cam\", nonce=\"n\"\r\nWWW-Authenticate: Basic realm=\"cam\"\r\n\r\n";
        let (r, _) = parse_response(auth).unwrap().unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(r.auth_schemes(), ["Digest", "Basic"]);
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_response(b"SSH-2.0-OpenSSH").is_err());
        assert!(parse_response(b"RTSP/1.0 200 OK\r\nContent-Length: 99999999\r\n\r\n").is_err());
        assert!(parse_response(&vec![b'R'; MAX_RESPONSE + 1]).is_err());
        assert_eq!(
            request("DESCRIBE", "rtsp://h/x", 3),
            "DESCRIBE rtsp://h/x RTSP/1.0\r\nCSeq: 3\r\nUser-Agent: guardian-edge\r\nAccept: application/sdp\r\n\r\n"
        );
    }
}
