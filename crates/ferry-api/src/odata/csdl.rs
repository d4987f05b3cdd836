//! The service document (`GET /data`) and the CSDL metadata document (`$metadata`) generated
//! from the catalog.

use super::json_out::write_string;
use super::{Ctx, Flavor};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_model::{COMPANY_FIELD, EnumStyle, FieldType};
use std::fmt::Write;

pub(crate) fn namespace(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Dataverse => "Microsoft.Dynamics.CRM",
        _ => "Microsoft.Dynamics.DataEntities",
    }
}

pub(crate) fn service_document(ctx: &Ctx) -> Response {
    let mut body = String::from("{\"@odata.context\":");
    write_string(&mut body, &format!("{}/$metadata", ctx.root.url));
    body.push_str(",\"value\":[");
    for (n, entity) in ctx.state.catalog().entities().iter().enumerate() {
        if n > 0 {
            body.push(',');
        }
        body.push_str("{\"name\":");
        write_string(&mut body, &entity.collection);
        body.push_str(",\"kind\":\"EntitySet\",\"url\":");
        write_string(&mut body, &entity.collection);
        body.push('}');
    }
    body.push_str("]}");
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json; odata.metadata=minimal")], body).into_response()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn property(out: &mut String, ns: &str, name: &str, ty: &FieldType, nullable: bool) {
    let edm = match ty {
        FieldType::Enum(e) if e.style == EnumStyle::Symbol => format!("{ns}.{}", e.name),
        other => other.edm_type().to_string(),
    };
    let _ = write!(out, "<Property Name=\"{}\" Type=\"{edm}\"", xml_escape(name));
    if !nullable {
        out.push_str(" Nullable=\"false\"");
    }
    match ty {
        FieldType::String { max_length: Some(n) } => {
            let _ = write!(out, " MaxLength=\"{n}\"");
        }
        FieldType::Decimal { precision, scale } => {
            let _ = write!(out, " Precision=\"{precision}\" Scale=\"{scale}\"");
        }
        FieldType::DateTime => out.push_str(" Precision=\"6\""),
        _ => {}
    }
    out.push_str("/>");
}

pub(crate) fn metadata_document(ctx: &Ctx) -> Response {
    let ns = namespace(ctx.flavor);
    let catalog = ctx.state.catalog();
    let mut xml = String::with_capacity(64 * 1024);
    xml.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    xml.push_str("<edmx:Edmx Version=\"4.0\" xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\">");
    xml.push_str("<edmx:DataServices>");
    let _ = write!(xml, "<Schema Namespace=\"{ns}\" xmlns=\"http://docs.oasis-open.org/odata/ns/edm\">");
    for entity in catalog.entities() {
        let _ = write!(xml, "<EntityType Name=\"{}\"><Key>", xml_escape(&entity.public_name));
        if entity.company_specific {
            let _ = write!(xml, "<PropertyRef Name=\"{COMPANY_FIELD}\"/>");
        }
        for field in entity.key_fields() {
            let _ = write!(xml, "<PropertyRef Name=\"{}\"/>", xml_escape(&field.name));
        }
        xml.push_str("</Key>");
        if entity.company_specific {
            property(&mut xml, ns, COMPANY_FIELD, &FieldType::String { max_length: Some(32) }, false);
        }
        for (i, field) in entity.fields.iter().enumerate() {
            property(&mut xml, ns, &field.name, &field.ty, !entity.key.contains(&i));
        }
        xml.push_str("</EntityType>");
    }
    for e in catalog.enums().iter().filter(|e| e.style == EnumStyle::Symbol) {
        let _ = write!(xml, "<EnumType Name=\"{}\" UnderlyingType=\"Edm.Int32\">", xml_escape(&e.name));
        for m in &e.members {
            let _ = write!(xml, "<Member Name=\"{}\" Value=\"{}\"/>", xml_escape(&m.name), m.code);
        }
        xml.push_str("</EnumType>");
    }
    if ctx.flavor != Flavor::Dataverse {
        dmf_schema(&mut xml, ns);
    }
    xml.push_str("<EntityContainer Name=\"Resources\">");
    if ctx.flavor != Flavor::Dataverse {
        let _ = write!(
            xml,
            "<EntitySet Name=\"DataManagementDefinitionGroups\" EntityType=\"{ns}.DataManagementDefinitionGroup\"/>"
        );
    }
    for entity in catalog.entities() {
        let _ = write!(
            xml,
            "<EntitySet Name=\"{}\" EntityType=\"{ns}.{}\"/>",
            xml_escape(&entity.collection),
            xml_escape(&entity.public_name)
        );
    }
    xml.push_str("</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/xml"), (header::HeaderName::from_static("odata-version"), "4.0")],
        xml,
    )
        .into_response()
}

/// The data-management package API as typed OData clients (generated proxies, the Logic Apps
/// connector) resolve it: `DataManagementDefinitionGroups`, its bound actions with their
/// parameter names, and the `DMFExecutionSummaryStatus` enum.
/// An action's name, its parameters (name, type) and its return type.
type ActionDecl = (&'static str, &'static [(&'static str, &'static str)], &'static str);

const EXECUTION: &[(&str, &str)] = &[("executionId", "Edm.String")];
const ENTITY_OF_EXECUTION: &[(&str, &str)] = &[("executionId", "Edm.String"), ("entityName", "Edm.String")];
const IMPORT_PACKAGE: &[(&str, &str)] = &[
    ("packageUrl", "Edm.String"),
    ("definitionGroupId", "Edm.String"),
    ("executionId", "Edm.String"),
    ("execute", "Edm.Boolean"),
    ("overwrite", "Edm.Boolean"),
    ("legalEntityId", "Edm.String"),
];
const EXPORT_PACKAGE: &[(&str, &str)] = &[
    ("definitionGroupId", "Edm.String"),
    ("packageName", "Edm.String"),
    ("executionId", "Edm.String"),
    ("reExecute", "Edm.Boolean"),
    ("legalEntityId", "Edm.String"),
];
const EXPORT_PREVIEW: &[(&str, &str)] = &[
    ("definitionGroupId", "Edm.String"),
    ("packageName", "Edm.String"),
    ("executionId", "Edm.String"),
    ("reExecute", "Edm.Boolean"),
    ("legalEntityId", "Edm.String"),
    ("count", "Edm.Int32"),
];
const EXPORT_DELTA: &[(&str, &str)] = &[
    ("definitionGroupId", "Edm.String"),
    ("packageName", "Edm.String"),
    ("executionId", "Edm.String"),
    ("reExecute", "Edm.Boolean"),
    ("legalEntityId", "Edm.String"),
    ("entityList", "Edm.String"),
];

/// Every action served, as `dmf/` answers it (a void action has no return type).
pub(crate) const DMF_ACTIONS: &[ActionDecl] = &[
    ("GetMessageStatus", &[("messageId", "Edm.String")], "Edm.String"),
    ("GetExecutionIdByMessageId", &[("_messageId", "Edm.String")], "Edm.String"),
    ("GetExecutionErrors", EXECUTION, "Edm.String"),
    ("GetExecutionSummaryStatus", EXECUTION, "DMFExecutionSummaryStatus"),
    ("GetEntityExecutionSummaryStatusList", EXECUTION, "Collection(EntityExecutionSummaryStatus)"),
    ("InitializeDataManagement", &[], ""),
    ("GetAzureWriteUrl", &[("uniqueFileName", "Edm.String")], "Edm.String"),
    ("ImportFromPackage", IMPORT_PACKAGE, "Edm.String"),
    ("ImportFromPackageAsync", IMPORT_PACKAGE, "Edm.String"),
    ("ExportToPackage", EXPORT_PACKAGE, "Edm.String"),
    ("ExportToPackageAsync", EXPORT_PACKAGE, "Edm.String"),
    ("ExportToPackagePreview", EXPORT_PREVIEW, "Edm.String"),
    ("ExportToPackagePreviewAsync", EXPORT_PREVIEW, "Edm.String"),
    ("ExportToPackageDelta", EXPORT_DELTA, "Edm.String"),
    ("GetExportedPackageUrl", EXECUTION, "Edm.String"),
    ("GetExecutionSummaryPageUrl", EXECUTION, "Edm.String"),
    ("GenerateImportTargetErrorKeysFile", ENTITY_OF_EXECUTION, "Edm.Boolean"),
    ("GetImportTargetErrorKeysFileUrl", ENTITY_OF_EXECUTION, "Edm.String"),
    ("GetImportStagingErrorFileUrl", ENTITY_OF_EXECUTION, "Edm.String"),
    ("DeleteExecutionHistoryJob", EXECUTION, ""),
];

fn dmf_schema(xml: &mut String, ns: &str) {
    xml.push_str(
        "<EntityType Name=\"DataManagementDefinitionGroup\"><Key><PropertyRef Name=\"Name\"/></Key>\
         <Property Name=\"Name\" Type=\"Edm.String\" Nullable=\"false\"/>\
         <Property Name=\"Description\" Type=\"Edm.String\"/>\
         <Property Name=\"OperationType\" Type=\"Edm.String\"/></EntityType>",
    );
    xml.push_str("<EnumType Name=\"DMFExecutionSummaryStatus\" UnderlyingType=\"Edm.Int32\">");
    for (code, name) in
        ["Unknown", "NotRun", "Executing", "Succeeded", "PartiallySucceeded", "Failed", "Canceled"].iter().enumerate()
    {
        let _ = write!(xml, "<Member Name=\"{name}\" Value=\"{code}\"/>");
    }
    xml.push_str("</EnumType>");
    xml.push_str("<ComplexType Name=\"EntityExecutionSummaryStatus\">");
    for name in ["EntityName", "Company", "ExecutionStatus", "StagingStatus", "TargetStatus"] {
        let _ = write!(xml, "<Property Name=\"{name}\" Type=\"Edm.String\"/>");
    }
    for name in [
        "StagingRecordCount",
        "StagingErrorCount",
        "TargetRecordsCreatedCount",
        "TargetRecordsUpdatedCount",
        "TargetRecordsUnchangedCount",
        "TargetErrorCount",
    ] {
        let _ = write!(xml, "<Property Name=\"{name}\" Type=\"Edm.Int64\"/>");
    }
    for name in ["StartDateTime", "EndDateTime"] {
        let _ = write!(xml, "<Property Name=\"{name}\" Type=\"Edm.DateTimeOffset\"/>");
    }
    xml.push_str("</ComplexType>");
    for (name, params, returns) in DMF_ACTIONS {
        let _ = write!(
            xml,
            "<Action Name=\"{name}\" IsBound=\"true\"><Parameter Name=\"DataManagementDefinitionGroup\" \
             Type=\"Collection({ns}.DataManagementDefinitionGroup)\"/>"
        );
        for (param, ty) in *params {
            let _ = write!(xml, "<Parameter Name=\"{param}\" Type=\"{ty}\"/>");
        }
        let returns = match returns.strip_prefix("Collection(") {
            Some(inner) => format!("Collection({ns}.{inner}"),
            None if returns.is_empty() || returns.starts_with("Edm.") => returns.to_string(),
            None => format!("{ns}.{returns}"),
        };
        if !returns.is_empty() {
            let _ = write!(xml, "<ReturnType Type=\"{returns}\"/>");
        }
        xml.push_str("</Action>");
    }
}
