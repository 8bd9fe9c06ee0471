//! XML as S3 speaks it: a small writer for response documents and a bounded reader for the
//! few request bodies S3 defines (CreateBucketConfiguration, CompleteMultipartUpload).

use quick_xml::events::Event;
use quick_xml::Reader;

use super::error::{S3Error, S3ErrorCode};

const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Builds a document in one `String`; element names are static, text is escaped.
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    pub fn new() -> Self {
        Self {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        }
    }

    /// A document sent after keep-alive whitespace, where no declaration may appear.
    pub fn without_declaration() -> Self {
        Self { out: String::new() }
    }

    /// The root element of a response, in the S3 namespace.
    pub fn open_root(&mut self, name: &'static str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(" xmlns=\"");
        self.out.push_str(S3_NAMESPACE);
        self.out.push_str("\">");
    }

    pub fn open(&mut self, name: &'static str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    pub fn close(&mut self, name: &'static str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    pub fn element(&mut self, name: &'static str, text: &str) {
        self.open(name);
        self.out.push_str(&quick_xml::escape::escape(text));
        self.close(name);
    }

    /// Markup written as is: for the few elements with attributes.
    pub fn raw(&mut self, markup: &'static str) {
        self.out.push_str(markup);
    }

    pub fn text(&mut self, text: &str) {
        self.out.push_str(&quick_xml::escape::escape(text));
    }

    pub fn element_display(&mut self, name: &'static str, value: impl std::fmt::Display) {
        self.element(name, &value.to_string());
    }

    pub fn finish(self) -> String {
        self.out
    }
}

impl Default for XmlWriter {
    fn default() -> Self {
        Self::new()
    }
}

/// A parsed element tree, small by construction (bodies are size-limited before parsing).
#[derive(Debug, Default)]
pub struct XmlElement {
    pub name: String,
    pub text: String,
    pub children: Vec<XmlElement>,
}

impl XmlElement {
    pub fn child(&self, name: &str) -> Option<&XmlElement> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a XmlElement> {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
}

const MAX_DEPTH: usize = 8;

/// Parses `body` into a tree, ignoring namespaces; anything malformed is MalformedXML.
pub fn parse(body: &[u8]) -> Result<XmlElement, S3Error> {
    let malformed = || S3Error::new(S3ErrorCode::MalformedXML);
    let mut reader = Reader::from_reader(body);
    let mut stack: Vec<XmlElement> = Vec::new();
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf).map_err(|_| malformed())? {
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(malformed());
                }
                let name = String::from_utf8(start.local_name().as_ref().to_vec())
                    .map_err(|_| malformed())?;
                stack.push(XmlElement {
                    name,
                    ..XmlElement::default()
                });
            }
            Event::Empty(start) => {
                let name = String::from_utf8(start.local_name().as_ref().to_vec())
                    .map_err(|_| malformed())?;
                let element = XmlElement {
                    name,
                    ..XmlElement::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => return Ok(element),
                }
            }
            Event::Text(text) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text.decode().map_err(|_| malformed())?);
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(top) = stack.last_mut() {
                    let c = match reference.resolve_char_ref().map_err(|_| malformed())? {
                        Some(c) => c,
                        None => match &*reference {
                            b"lt" => '<',
                            b"gt" => '>',
                            b"amp" => '&',
                            b"quot" => '"',
                            b"apos" => '\'',
                            _ => return Err(malformed()),
                        },
                    };
                    top.text.push(c);
                }
            }
            Event::CData(data) => {
                if let Some(top) = stack.last_mut() {
                    top.text
                        .push_str(std::str::from_utf8(&data).map_err(|_| malformed())?);
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or_else(malformed)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => return Ok(element),
                }
            }
            Event::Eof => return Err(malformed()),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_escapes_text() {
        let mut w = XmlWriter::new();
        w.open_root("R");
        w.element("Key", "a<b>&\"c\"");
        w.close("R");
        let xml = w.finish();
        assert!(
            xml.contains("<Key>a&lt;b&gt;&amp;&quot;c&quot;</Key>"),
            "{xml}"
        );
    }

    #[test]
    fn parses_complete_multipart_upload() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Part><PartNumber>1</PartNumber><ETag>"abc"</ETag></Part>
  <Part><ETag>&quot;def&quot;</ETag><PartNumber>2</PartNumber></Part>
</CompleteMultipartUpload>"#;
        let root = parse(body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(root.name, "CompleteMultipartUpload");
        let parts: Vec<_> = root.children_named("Part").collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].child_text("ETag"), Some("\"def\""));
    }

    #[test]
    fn malformed_xml_is_an_s3_error() {
        for body in [&b"<a><b></a>"[..], b"<a>", b"", b"not xml"] {
            let err = parse(body).err().map(|e| e.code());
            assert_eq!(err, Some(S3ErrorCode::MalformedXML), "{body:?}");
        }
    }
}
