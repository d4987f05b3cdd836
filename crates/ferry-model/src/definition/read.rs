//! What a definition file may contain, read into plain structs: the keys of every table, which
//! are required, and their types. Whether the contents make sense is checked in `definition.rs`.

use super::CatalogSource;
use super::toml_reader::{Place, Plain, Reader, peek_string};
use crate::catalog::CatalogError;
use toml::Spanned;
use toml::de::DeTable;

pub(super) struct FileDef {
    pub(super) enums: Vec<EnumDef>,
    pub(super) entities: Vec<EntityDef>,
}

pub(super) struct EnumDef {
    pub(super) name: String,
    pub(super) label: Option<String>,
    /// `enum` (symbols on the wire, the default) or `optionset` (integer codes).
    pub(super) style: Option<String>,
    pub(super) values: Vec<EnumValueDef>,
}

pub(super) struct EnumValueDef {
    pub(super) name: String,
    pub(super) code: i64,
    pub(super) label: Option<String>,
}

pub(super) struct EntityDef {
    pub(super) label: String,
    pub(super) public_name: String,
    pub(super) collection: String,
    pub(super) logical_name: String,
    pub(super) category: Option<String>,
    pub(super) company_specific: bool,
    pub(super) key: Vec<String>,
    pub(super) primary_id: Option<String>,
    pub(super) fields: Vec<FieldDef>,
}

pub(super) struct FieldDef {
    pub(super) name: String,
    pub(super) label: Option<String>,
    pub(super) ty: String,
    pub(super) mandatory: bool,
    pub(super) default: Option<Plain>,
    /// `Collection.Field` of the entity this field refers to.
    pub(super) lookup: Option<String>,
}

impl FileDef {
    pub(super) fn read(source: &CatalogSource) -> Result<FileDef, CatalogError> {
        // The parser's message already points at the line and column; it is kept on one line.
        let root = DeTable::parse(&source.text).map_err(|e| CatalogError {
            origin: source.origin.clone(),
            entity: None,
            field: None,
            message: e.to_string().trim().replace('\n', " "),
        })?;
        let file = Place::file(&source.origin, &source.text);
        let mut r = Reader::new(root, &["enums", "entities"], file.clone())?;
        let enums = r.opt_tables("enums")?.into_iter().enumerate();
        let entities = r.opt_tables("entities")?.into_iter().enumerate();
        Ok(FileDef {
            enums: enums.map(|(i, table)| EnumDef::read(table, i, &file)).collect::<Result<_, _>>()?,
            entities: entities.map(|(i, table)| EntityDef::read(table, i, &file)).collect::<Result<_, _>>()?,
        })
    }
}

impl EnumDef {
    fn read<'a>(table: Spanned<DeTable<'a>>, index: usize, file: &Place<'a>) -> Result<EnumDef, CatalogError> {
        let place = match peek_string(table.get_ref(), "name") {
            Some(name) => file.labelled(format!("enum '{name}'")),
            None => file.labelled(format!("enum #{}", index + 1)),
        };
        let mut r = Reader::new(table, &["name", "label", "style", "values"], place)?;
        let name = r.string("name")?;
        let label = r.opt_string("label")?;
        let style = r.opt_string("style")?;
        let values = r.tables("values")?.into_iter().enumerate();
        let values = values.map(|(i, table)| EnumValueDef::read(table, i, r.place())).collect::<Result<_, _>>()?;
        Ok(EnumDef { name, label, style, values })
    }
}

impl EnumValueDef {
    fn read<'a>(table: Spanned<DeTable<'a>>, index: usize, outer: &Place<'a>) -> Result<EnumValueDef, CatalogError> {
        let place = match peek_string(table.get_ref(), "name") {
            Some(name) => outer.labelled(format!("value '{name}'")),
            None => outer.labelled(format!("value #{}", index + 1)),
        };
        let mut r = Reader::new(table, &["name", "code", "label"], place)?;
        Ok(EnumValueDef { name: r.string("name")?, code: r.integer("code")?, label: r.opt_string("label")? })
    }
}

impl EntityDef {
    fn read<'a>(table: Spanned<DeTable<'a>>, index: usize, file: &Place<'a>) -> Result<EntityDef, CatalogError> {
        let place = match peek_string(table.get_ref(), "public_name") {
            Some(name) => file.entity(name),
            None => file.labelled(format!("entity #{}", index + 1)),
        };
        let keys = [
            "label",
            "public_name",
            "collection",
            "logical_name",
            "category",
            "company_specific",
            "key",
            "primary_id",
            "fields",
        ];
        let mut r = Reader::new(table, &keys, place)?;
        let label = r.string("label")?;
        let public_name = r.string("public_name")?;
        let collection = r.string("collection")?;
        let logical_name = r.string("logical_name")?;
        let category = r.opt_string("category")?;
        let company_specific = r.flag("company_specific")?;
        let key = r.strings("key")?;
        let primary_id = r.opt_string("primary_id")?;
        let fields = r.tables("fields")?.into_iter().enumerate();
        let fields = fields.map(|(i, table)| FieldDef::read(table, i, r.place())).collect::<Result<_, _>>()?;
        Ok(EntityDef {
            label,
            public_name,
            collection,
            logical_name,
            category,
            company_specific,
            key,
            primary_id,
            fields,
        })
    }
}

impl FieldDef {
    fn read<'a>(table: Spanned<DeTable<'a>>, index: usize, entity: &Place<'a>) -> Result<FieldDef, CatalogError> {
        let place = match peek_string(table.get_ref(), "name") {
            Some(name) => entity.field(name),
            None => entity.labelled(format!("field #{}", index + 1)),
        };
        let mut r = Reader::new(table, &["name", "label", "type", "mandatory", "default", "lookup"], place)?;
        Ok(FieldDef {
            name: r.string("name")?,
            label: r.opt_string("label")?,
            ty: r.string("type")?,
            mandatory: r.flag("mandatory")?,
            default: r.plain("default")?,
            lookup: r.opt_string("lookup")?,
        })
    }
}
