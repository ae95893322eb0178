//! How glaux's own scans travel to workers. DataFusion sends its Parquet, CSV and JSON scans
//! itself; glaux's CSV and JSON scans (errors naming objects, Hive's null marker) and its ORC
//! scan are sent as the DataFusion scan they are built on plus what glaux adds.

use std::sync::Arc;

use datafusion::common::parsers::CompressionTypeVariant;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::physical_plan::FileScanConfigBuilder;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::bytes::{
    physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
};
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

use crate::formats::{file_scan, orc, wrapped};

const WRAPPED: u8 = 1;
const ORC: u8 = 2;

/// The codec coordinators and workers share for glaux's plan nodes.
#[derive(Debug, Default, Clone, Copy)]
pub struct GlauxCodec;

impl PhysicalExtensionCodec for GlauxCodec {
    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some((inner, nulls)) = wrapped::unwrap_scan(node.as_ref()) {
            buf.push(WRAPPED);
            buf.push(u8::from(nulls.marker().is_some()) | u8::from(nulls.empty_is_text()) << 1);
            put_text(buf, nulls.marker().unwrap_or_default());
            // DataFusion 55's CSV and JSON scans travel without their compression
            put_text(buf, &compression(inner.as_ref()).map(|c| c.get_variant().to_string()).unwrap_or_default());
            buf.extend_from_slice(&physical_plan_to_bytes_with_extension_codec(inner, self)?);
            return Ok(());
        }
        if let Some(carried) = orc::carried_scan(node.as_ref())? {
            buf.push(ORC);
            buf.extend_from_slice(&physical_plan_to_bytes_with_extension_codec(carried, self)?);
            return Ok(());
        }
        Err(DataFusionError::NotImplemented(format!(
            "glaux cannot send a {} to a worker: {}",
            node.name(),
            datafusion::physical_plan::displayable(node.as_ref()).one_line()
        )))
    }

    fn try_decode(
        &self,
        buf: &[u8],
        _inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        _converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let malformed = || DataFusionError::Internal("a glaux plan node arrived malformed".into());
        match buf.split_first() {
            Some((&WRAPPED, rest)) => {
                let (&flags, rest) = rest.split_first().ok_or_else(malformed)?;
                let (marker, rest) = take_text(rest).ok_or_else(malformed)?;
                let (codec, plan) = take_text(rest).ok_or_else(malformed)?;
                let mut inner = physical_plan_from_bytes_with_extension_codec(plan, ctx, self)?;
                if !codec.is_empty() {
                    let variant: CompressionTypeVariant = codec.parse()?;
                    inner = with_compression(inner, FileCompressionType::from(variant))?;
                }
                let nulls = wrapped::TextNulls::new((flags & 1 == 1).then_some(marker), flags & 2 == 2)?;
                wrapped::rewrap_scan(inner, nulls)
            }
            Some((&ORC, plan)) => orc::orc_scan(physical_plan_from_bytes_with_extension_codec(plan, ctx, self)?),
            _ => Err(malformed()),
        }
    }
}

/// Appends `text`, its length first.
fn put_text(buf: &mut Vec<u8>, text: &str) {
    buf.extend_from_slice(&(text.len() as u32).to_le_bytes());
    buf.extend_from_slice(text.as_bytes());
}

/// The text [`put_text`] wrote at the start of `bytes`, and what follows it.
fn take_text(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let (length, rest) = bytes.split_first_chunk::<4>()?;
    let (text, rest) = rest.split_at_checked(u32::from_le_bytes(*length) as usize)?;
    Some((std::str::from_utf8(text).ok()?, rest))
}

/// A file scan's compression, if it has one.
fn compression(plan: &dyn ExecutionPlan) -> Option<FileCompressionType> {
    file_scan(plan).map(|c| c.file_compression_type).filter(|c| c.is_compressed())
}

fn with_compression(plan: Arc<dyn ExecutionPlan>, codec: FileCompressionType) -> Result<Arc<dyn ExecutionPlan>> {
    let config = file_scan(plan.as_ref())
        .ok_or_else(|| DataFusionError::Internal(format!("a compressed scan arrived as {}", plan.name())))?;
    Ok(DataSourceExec::from_data_source(
        FileScanConfigBuilder::from(config.clone()).with_file_compression_type(codec).build(),
    ))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::listing::PartitionedFile;
    use datafusion::datasource::physical_plan::{CsvSource, FileScanConfigBuilder, FileSource};
    use datafusion::datasource::source::DataSourceExec;
    use datafusion::datasource::table_schema::TableSchema;
    use datafusion::execution::object_store::ObjectStoreUrl;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::SessionContext;

    use super::*;
    use crate::formats::orc::OrcSource;

    fn scan(source: Arc<dyn FileSource>) -> Arc<dyn ExecutionPlan> {
        let url = ObjectStoreUrl::parse("s3://bucket").unwrap();
        let config = FileScanConfigBuilder::new(url, source)
            .with_file(PartitionedFile::new("t/year=2024/part-0", 1234))
            .with_projection_indices(Some(vec![1, 0]))
            .unwrap()
            .build();
        DataSourceExec::from_data_source(config)
    }

    fn table() -> TableSchema {
        let file = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("score", DataType::Float64, true),
        ]));
        TableSchema::builder(file)
            .with_table_partition_cols(vec![Arc::new(Field::new("year", DataType::Utf8, true))])
            .build()
    }

    fn round_trip(plan: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
        let bytes = physical_plan_to_bytes_with_extension_codec(Arc::clone(&plan), &GlauxCodec).unwrap();
        let ctx = SessionContext::new();
        let back = physical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &GlauxCodec).unwrap();
        assert_eq!(back.schema(), plan.schema());
        assert_eq!(
            displayable(back.as_ref()).indent(true).to_string(),
            displayable(plan.as_ref()).indent(true).to_string()
        );
        back
    }

    #[test]
    fn orc_scans_travel_with_their_files_and_columns() {
        let back = round_trip(scan(Arc::new(OrcSource::new(table()))));
        assert!(orc::carried_scan(back.as_ref()).unwrap().is_some(), "not an ORC scan after the trip");
    }

    #[test]
    fn glaux_csv_scans_travel_with_their_null_marker_and_compression() {
        let csv = scan(Arc::new(CsvSource::new(table())));
        let csv = with_compression(csv, FileCompressionType::GZIP).unwrap();
        let plan = wrapped::rewrap_scan(csv, wrapped::TextNulls::new(Some("\\\\N"), true).unwrap()).unwrap();
        let back = round_trip(plan);
        let (inner, nulls) = wrapped::unwrap_scan(back.as_ref()).expect("a glaux CSV scan after the trip");
        assert_eq!(nulls.marker(), Some("\\\\N"));
        assert!(nulls.empty_is_text());
        assert_eq!(compression(inner.as_ref()).map(|c| *c.get_variant()), Some(CompressionTypeVariant::GZIP));
    }

    #[test]
    fn a_malformed_node_is_an_error() {
        let ctx = SessionContext::new();
        for bad in [&[][..], &[WRAPPED][..], &[WRAPPED, 1, 9, 0, 0, 0, b'x'][..], &[7, 1, 2][..]] {
            let error = GlauxCodec.try_decode(
                bad,
                &[],
                &ctx.task_ctx(),
                &datafusion_proto::physical_plan::DefaultPhysicalProtoConverter {},
            );
            assert!(error.is_err(), "{bad:?}");
        }
    }
}
