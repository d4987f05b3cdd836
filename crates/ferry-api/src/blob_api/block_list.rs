//! The body of Put Block List, read with the hardening the package manifests get (quick-xml, no
//! DTD — so no entity expansion —, no entities but character references, a fixed shape): at most
//! [`MAX_BLOCKS`] entries, each a base64 block id of at most 64 bytes. The body itself is read
//! with a size cap before it gets here.
//!
//! ```xml
//! <?xml version="1.0" encoding="utf-8"?>
//! <BlockList><Latest>AAAA</Latest><Uncommitted>AQID</Uncommitted><Committed>…</Committed></BlockList>
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_blob::MAX_BLOCK_ID_BYTES;
use quick_xml::events::Event;

use super::azure_error::{AzureError, Code};

/// The most blocks a blob is committed from (Azure's limit).
pub(crate) const MAX_BLOCKS: usize = 50_000;
/// The longest base64 block id: [`MAX_BLOCK_ID_BYTES`] bytes with padding.
pub(crate) const MAX_BLOCK_ID_BASE64: usize = MAX_BLOCK_ID_BYTES.div_ceil(3) * 4;

/// Where a listed block is to be found. ferry keeps no committed block list (a blob is bytes
/// once committed), so `Latest` and `Uncommitted` both name staged blocks and `Committed`
/// names nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlockKind {
    Latest,
    Committed,
    Uncommitted,
}

/// One entry of a block list: where to look, and the decoded id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ListedBlock {
    pub kind: BlockKind,
    pub id: Vec<u8>,
}

/// Decodes a block id as Azure spells it (standard base64), checking its length first.
pub(crate) fn decode_block_id(text: &str) -> Result<Vec<u8>, AzureError> {
    if text.is_empty() || text.len() > MAX_BLOCK_ID_BASE64 {
        return Err(invalid_block_id());
    }
    let id = STANDARD.decode(text).map_err(|_| invalid_block_id())?;
    if id.is_empty() || id.len() > MAX_BLOCK_ID_BYTES {
        return Err(invalid_block_id());
    }
    Ok(id)
}

fn invalid_block_id() -> AzureError {
    AzureError::new(Code::InvalidBlockId, format!("a block id must be base64 of 1 to {MAX_BLOCK_ID_BYTES} bytes"))
}

/// Parses a Put Block List body.
pub(crate) fn parse(body: &[u8]) -> Result<Vec<ListedBlock>, AzureError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let text = std::str::from_utf8(body).map_err(|_| malformed("the block list is not UTF-8"))?;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut blocks = Vec::new();
    let mut root_seen = false;
    // The open elements: none, <BlockList>, or <BlockList> and one entry.
    let mut entry: Option<(BlockKind, String)> = None;
    let mut in_root = false;
    loop {
        let event = reader.read_event().map_err(|e| malformed(&format!("the block list is not XML: {e}")))?;
        let is_empty = matches!(event, Event::Empty(_));
        match event {
            Event::Start(start) | Event::Empty(start) if !in_root && entry.is_none() => {
                if root_seen || start.local_name().as_ref() != "BlockList" {
                    return Err(malformed("the root element must be one <BlockList>"));
                }
                root_seen = true;
                in_root = !is_empty;
            }
            Event::Start(start) | Event::Empty(start) if in_root && entry.is_none() => {
                let kind = match start.local_name().as_ref() {
                    "Latest" => BlockKind::Latest,
                    "Committed" => BlockKind::Committed,
                    "Uncommitted" => BlockKind::Uncommitted,
                    _ => return Err(malformed("<BlockList> holds only <Latest>, <Committed> and <Uncommitted>")),
                };
                if is_empty {
                    return Err(invalid_block_id());
                }
                entry = Some((kind, String::new()));
            }
            Event::Start(_) | Event::Empty(_) => return Err(malformed("a block id holds no elements")),
            Event::Text(text) => {
                let content = text.xml10_content();
                match entry.as_mut() {
                    Some((_, id)) if id.len() + content.len() <= MAX_BLOCK_ID_BASE64 + 64 => id.push_str(&content),
                    Some(_) => return Err(invalid_block_id()),
                    None if content.trim().is_empty() => {}
                    None => return Err(malformed("text outside a block id")),
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = reference.resolve_char_ref().ok().flatten();
                match (entry.as_mut(), resolved) {
                    (Some((_, id)), Some(c)) if id.len() <= MAX_BLOCK_ID_BASE64 + 64 => id.push(c),
                    _ => return Err(malformed("entities are not allowed in a block list")),
                }
            }
            Event::End(_) => match entry.take() {
                Some((kind, id)) => {
                    if blocks.len() == MAX_BLOCKS {
                        return Err(AzureError::new(
                            Code::BlockCountExceedsLimit,
                            format!("a blob is committed from at most {MAX_BLOCKS} blocks"),
                        ));
                    }
                    blocks.push(ListedBlock { kind, id: decode_block_id(id.trim())? });
                }
                None if in_root => in_root = false,
                None => return Err(malformed("an end tag without a start tag")),
            },
            Event::DocType(_) => return Err(malformed("DTDs (<!DOCTYPE …>) are not allowed in a block list")),
            Event::CData(_) => return Err(malformed("CDATA is not allowed in a block list")),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !root_seen || in_root || entry.is_some() {
        return Err(malformed("the block list ends before </BlockList>"));
    }
    Ok(blocks)
}

fn malformed(message: &str) -> AzureError {
    AzureError::new(Code::InvalidXmlDocument, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(body: &str) -> Code {
        parse(body.as_bytes()).expect_err(body).code
    }

    #[test]
    fn parses_what_the_sdks_send() {
        let body = "\u{feff}<?xml version='1.0' encoding='utf-8'?>\n<BlockList><Latest>AAAA</Latest>\
                    <Uncommitted> AQID </Uncommitted><Committed>AQ==</Committed><Latest>A&#x41;&#65;A</Latest></BlockList>";
        let blocks = parse(body.as_bytes()).unwrap();
        let kinds: Vec<BlockKind> = blocks.iter().map(|b| b.kind).collect();
        assert_eq!(kinds, [BlockKind::Latest, BlockKind::Uncommitted, BlockKind::Committed, BlockKind::Latest]);
        assert_eq!(blocks[0].id, [0, 0, 0]);
        assert_eq!(blocks[1].id, [1, 2, 3]);
        assert_eq!(blocks[2].id, [1]);
        assert_eq!(blocks[3].id, [0, 0, 0], "character references resolve");
        assert_eq!(parse(b"<BlockList/>").unwrap(), vec![]);
        assert_eq!(parse(b"<BlockList>\n</BlockList>").unwrap(), vec![]);
    }

    #[test]
    fn refuses_hostile_or_malformed_lists() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>
                      <BlockList><Latest>&lol2;</Latest></BlockList>"#;
        assert_eq!(code(bomb), Code::InvalidXmlDocument);
        assert_eq!(code("<BlockList><Latest>&lol;</Latest></BlockList>"), Code::InvalidXmlDocument);
        assert_eq!(code("<BlockList><Latest><![CDATA[AAAA]]></Latest></BlockList>"), Code::InvalidXmlDocument);
        assert_eq!(code("<Other/>"), Code::InvalidXmlDocument);
        assert_eq!(code("<BlockList/><BlockList/>"), Code::InvalidXmlDocument);
        assert_eq!(code("<BlockList><Block>AAAA</Block></BlockList>"), Code::InvalidXmlDocument);
        assert_eq!(code("<BlockList><Latest><Latest>AAAA</Latest></Latest></BlockList>"), Code::InvalidXmlDocument);
        assert_eq!(code("<BlockList>text</BlockList>"), Code::InvalidXmlDocument);
        assert_eq!(code("<BlockList><Latest>AAAA</Latest>"), Code::InvalidXmlDocument);
        assert_eq!(code("<BlockList><Latest>AAAA</Other></BlockList>"), Code::InvalidXmlDocument);
        assert_eq!(code(""), Code::InvalidXmlDocument);
        assert_eq!(parse(b"\xff\xfe<").unwrap_err().code, Code::InvalidXmlDocument);

        assert_eq!(code("<BlockList><Latest></Latest></BlockList>"), Code::InvalidBlockId);
        assert_eq!(code("<BlockList><Latest/></BlockList>"), Code::InvalidBlockId);
        assert_eq!(code("<BlockList><Latest>not base64!</Latest></BlockList>"), Code::InvalidBlockId);
        let long = STANDARD.encode([7u8; MAX_BLOCK_ID_BYTES + 1]);
        assert_eq!(code(&format!("<BlockList><Latest>{long}</Latest></BlockList>")), Code::InvalidBlockId);
        let huge = "A".repeat(1 << 20);
        assert_eq!(code(&format!("<BlockList><Latest>{huge}</Latest></BlockList>")), Code::InvalidBlockId);

        let max = STANDARD.encode([7u8; MAX_BLOCK_ID_BYTES]);
        assert_eq!(max.len(), MAX_BLOCK_ID_BASE64);
        let entry = format!("<Latest>{max}</Latest>");
        let full = format!("<BlockList>{}</BlockList>", entry.repeat(MAX_BLOCKS));
        assert_eq!(parse(full.as_bytes()).unwrap().len(), MAX_BLOCKS);
        let over = format!("<BlockList>{}</BlockList>", "<Latest>AAAA</Latest>".repeat(MAX_BLOCKS + 1));
        assert_eq!(code(&over), Code::BlockCountExceedsLimit);
    }
}
