//! A small XML tree for the SOAP and WS-Discovery answers of cameras: elements by namespace
//! URI and local name (never by prefix, which each camera picks), text with entities
//! resolved, bounded in size, depth and element count. Parsing is quick-xml's; this module
//! only keeps what the parsers here read.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use super::LanError;

/// The largest document parsed.
pub const MAX_BYTES: usize = 1024 * 1024;
/// The deepest nesting accepted.
pub const MAX_DEPTH: usize = 48;
/// The most elements accepted.
pub const MAX_ELEMENTS: usize = 20_000;

/// One element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Its namespace URI (empty when unbound).
    pub ns: String,
    /// Its local name.
    pub name: String,
    /// Attributes by local name (namespaces of attributes are not kept).
    pub attrs: Vec<(String, String)>,
    /// Its own text (the concatenation of its text nodes), trimmed.
    pub text: String,
    /// Child elements in order.
    pub children: Vec<Element>,
}

impl Element {
    /// The first child named `name` in namespace `ns` (`""` for any namespace).
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// Every child named `name` in `ns` (`""` for any).
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// Whether it is `name` in `ns` (`""` for any namespace).
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.name == name && (ns.is_empty() || self.ns == ns)
    }

    /// The first element anywhere below (depth first) named `name` in `ns`.
    pub fn find(&self, ns: &str, name: &str) -> Option<&Element> {
        for c in &self.children {
            if c.is(ns, name) {
                return Some(c);
            }
            if let Some(f) = c.find(ns, name) {
                return Some(f);
            }
        }
        None
    }

    /// Every element anywhere below named `name` in `ns`, depth first.
    pub fn find_all<'a>(&'a self, ns: &str, name: &str, out: &mut Vec<&'a Element>) {
        for c in &self.children {
            if c.is(ns, name) {
                out.push(c);
            }
            c.find_all(ns, name, out);
        }
    }

    /// The text of the element at the path of local names below this one (any namespace).
    pub fn text_at(&self, path: &[&str]) -> Option<&str> {
        let mut e = self;
        for p in path {
            e = e.child("", p)?;
        }
        Some(e.text.as_str())
    }

    /// An attribute's value by local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn local(qname: &[u8]) -> String {
    let l = match qname.iter().rposition(|&b| b == b':') {
        Some(i) => &qname[i + 1..],
        None => qname,
    };
    String::from_utf8_lossy(l).into_owned()
}

fn bad(what: impl std::fmt::Display) -> LanError {
    LanError::Malformed(format!("XML: {what}"))
}

/// Parses a document into its root element.
pub fn parse(doc: &[u8]) -> Result<Element, LanError> {
    if doc.len() > MAX_BYTES {
        return Err(LanError::TooLarge(doc.len()));
    }
    let text = std::str::from_utf8(doc).map_err(|_| bad("not UTF-8"))?;
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut count = 0usize;
    let mut root: Option<Element> = None;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(bad)?;
        let ns = match ns {
            ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
            _ => String::new(),
        };
        match event {
            Event::Start(e) | Event::Empty(e) if root.is_some() => {
                let _ = e;
                return Err(bad("content after the root element"));
            }
            ev @ (Event::Start(_) | Event::Empty(_)) => {
                let (e, empty) = match ev {
                    Event::Start(e) => (e, false),
                    Event::Empty(e) => (e, true),
                    _ => unreachable!("matched above"),
                };
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(bad("too many elements"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(bad("nested too deeply"));
                }
                let mut attrs = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(bad)?;
                    let key = a.key.as_ref();
                    if key.starts_with(b"xmlns") {
                        continue;
                    }
                    let v = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(bad)?
                        .into_owned();
                    attrs.push((local(key), v));
                }
                let el = Element {
                    ns,
                    name: local(e.name().as_ref()),
                    attrs,
                    ..Default::default()
                };
                if empty {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => root = Some(el),
                    }
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let mut el = stack.pop().ok_or_else(|| bad("unbalanced end tag"))?;
                el.text = el.text.trim().to_owned();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.decode().map_err(bad)?);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.decode().map_err(bad)?);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    let c = match r.resolve_char_ref().map_err(bad)? {
                        Some(c) => c,
                        None => match r.decode().map_err(bad)?.as_ref() {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "apos" => '\'',
                            "quot" => '"',
                            other => return Err(bad(format!("unknown entity &{other};"))),
                        },
                    };
                    top.text.push(c);
                }
            }
            Event::Eof => break,
            Event::DocType(_) => return Err(bad("a DOCTYPE is not accepted")),
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(bad("unclosed element"));
    }
    root.ok_or_else(|| bad("no root element"))
}

/// Escapes text for an element's content or an attribute value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_by_uri_entities_and_limits() {
        let doc = br#"<?xml version="1.0"?>
            <a:Envelope xmlns:a="urn:one" xmlns="urn:default">
              <Body x:k="v" xmlns:x="urn:x"><b:Uri xmlns:b="urn:two">rtsp://h/p?c=1&amp;s=0&#33;</b:Uri><Empty/></Body>
            </a:Envelope>"#;
        let root = parse(doc).unwrap();
        assert!(root.is("urn:one", "Envelope"));
        let body = root.child("urn:default", "Body").unwrap();
        assert_eq!(body.attr("k"), Some("v"));
        let uri = root.find("urn:two", "Uri").unwrap();
        assert_eq!(uri.text, "rtsp://h/p?c=1&s=0!");
        assert!(
            root.find("urn:one", "Uri").is_none(),
            "matched by URI, not prefix"
        );
        assert_eq!(root.text_at(&["Body", "Uri"]), Some("rtsp://h/p?c=1&s=0!"));
        assert!(body.child("", "Empty").is_some());

        assert!(parse(b"<a><b></a>").is_err());
        assert!(parse(b"<a/><b/>").is_err());
        assert!(parse(b"").is_err());
        assert!(parse(b"<!DOCTYPE x [<!ENTITY e 'x'>]><a>&e;</a>").is_err());
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(parse(deep.as_bytes()).is_err());
        assert!(matches!(
            parse(&vec![b' '; MAX_BYTES + 1]),
            Err(LanError::TooLarge(_))
        ));
        assert_eq!(escape("a<b&\"c'"), "a&lt;b&amp;&quot;c&apos;");
    }
}
