//! Results as Flight data: the schema a client is told (in FlightInfo, a prepared statement, or
//! an inline result) and the stream it then reads, from one definition, so they always agree.
//!
//! Invariants:
//! - The stream's schema message is exactly [`announced_schema`] of the result. (arrow-flight's
//!   own encoder rewrites union fields as non-nullable, which made ADBC refuse `UNION` columns
//!   as an "inconsistent schema"; Pond encodes with arrow-ipc directly.)
//! - Dictionary columns (DuckDB's `ENUM`) travel as dictionaries, as DuckDB's own Arrow export
//!   gives them, to every client that reads dictionaries. Java clients (the Flight SQL JDBC
//!   driver shows a dictionary column's indices, not its values) get them hydrated, as do
//!   clients that ask with the [`DICTIONARIES_HEADER`] header set to `hydrate`.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::writer::{CompressionContext, DictionaryTracker, IpcDataGenerator, IpcWriteOptions};
use arrow_flight::FlightData;
use futures::{Stream, StreamExt};
use tonic::{Request, Status};

use crate::status::FlightSqlError;

/// A request header choosing how dictionary columns travel: `keep` or `hydrate`.
pub const DICTIONARIES_HEADER: &str = "x-pond-dictionaries";

/// Batches larger than this are cut into several Flight messages: gRPC clients refuse messages
/// above 4 MiB by default.
const MAX_MESSAGE_BYTES: usize = 2 * 1024 * 1024;

/// How a client receives dictionary columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dictionaries {
    Keep,
    Hydrate,
}

impl Dictionaries {
    /// What the caller of `request` reads: its explicit choice, else by its gRPC library.
    pub fn of<T>(request: &Request<T>) -> Self {
        let header = |name: &str| request.metadata().get(name).and_then(|v| v.to_str().ok());
        match header(DICTIONARIES_HEADER) {
            Some(v) if v.eq_ignore_ascii_case("hydrate") => return Self::Hydrate,
            Some(v) if v.eq_ignore_ascii_case("keep") => return Self::Keep,
            _ => {}
        }
        if header("user-agent").is_some_and(|ua| ua.contains("grpc-java")) {
            Self::Hydrate
        } else {
            Self::Keep
        }
    }
}

/// The schema a client is told for a result of `schema`.
pub fn announced_schema(schema: &Schema, dictionaries: Dictionaries) -> Schema {
    match dictionaries {
        Dictionaries::Keep => schema.clone(),
        Dictionaries::Hydrate => Schema::new_with_metadata(
            schema.fields().iter().map(|f| hydrate_field(f)).collect::<Vec<_>>(),
            schema.metadata().clone(),
        ),
    }
}

fn hydrate_field(f: &Field) -> Field {
    f.clone().with_data_type(hydrate(f.data_type()))
}

fn hydrate(dt: &DataType) -> DataType {
    match dt {
        DataType::Dictionary(_, v) => hydrate(v),
        DataType::List(f) => DataType::List(Arc::new(hydrate_field(f))),
        DataType::LargeList(f) => DataType::LargeList(Arc::new(hydrate_field(f))),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(Arc::new(hydrate_field(f)), *n),
        DataType::Struct(fs) => DataType::Struct(fs.iter().map(|f| Arc::new(hydrate_field(f))).collect()),
        DataType::Map(f, sorted) => DataType::Map(Arc::new(hydrate_field(f)), *sorted),
        DataType::Union(fs, mode) => DataType::Union(
            fs.iter().map(|(id, f)| (id, Arc::new(hydrate_field(f)))).collect(),
            *mode,
        ),
        other => other.clone(),
    }
}

/// Encodes batches as one Arrow IPC stream, message by message.
struct Encoder {
    schema: SchemaRef,
    generator: IpcDataGenerator,
    tracker: DictionaryTracker,
    options: IpcWriteOptions,
    compression: CompressionContext,
}

impl Encoder {
    fn new(schema: SchemaRef) -> Self {
        Self {
            schema,
            generator: IpcDataGenerator::default(),
            // A dictionary that changes between batches is sent again, as a replacement.
            tracker: DictionaryTracker::new(false),
            options: IpcWriteOptions::default(),
            compression: CompressionContext::default(),
        }
    }

    fn schema_message(&mut self) -> FlightData {
        self.generator
            .schema_to_bytes_with_dictionary_tracker(&self.schema, &mut self.tracker, &self.options)
            .into()
    }

    /// The messages of one batch (its dictionaries first), cast to the announced schema and
    /// cut to a size every gRPC client accepts.
    fn batch_messages(&mut self, batch: &RecordBatch) -> Result<Vec<FlightData>, ArrowError> {
        let batch = pond_duckling::engine::cast_to_schema(batch, &self.schema)?;
        let pieces = batch.get_array_memory_size().div_ceil(MAX_MESSAGE_BYTES).max(1);
        let rows_per_piece = batch.num_rows().div_ceil(pieces).max(1);
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let length = rows_per_piece.min(batch.num_rows() - offset);
            let piece = batch.slice(offset, length);
            let (dictionaries, data) =
                self.generator
                    .encode(&piece, &mut self.tracker, &self.options, &mut self.compression)?;
            out.extend(dictionaries.into_iter().map(FlightData::from));
            out.push(data.into());
            offset += length;
            if offset >= batch.num_rows() {
                return Ok(out);
            }
        }
    }
}

/// A stream of result batches as Flight data: the schema message, then each batch's messages.
/// An error ends the stream with that error.
pub fn flight_stream(
    schema: SchemaRef,
    batches: impl Stream<Item = Result<RecordBatch, FlightSqlError>> + Send + 'static,
) -> impl Stream<Item = Result<FlightData, Status>> + Send + 'static {
    let mut encoder = Encoder::new(schema);
    let head = futures::stream::once(futures::future::ready(Ok(encoder.schema_message())));
    let body = batches.flat_map(move |batch| {
        let messages = batch.and_then(|b| {
            encoder
                .batch_messages(&b)
                .map_err(|e| FlightSqlError::Internal(format!("encoding a result batch: {e}")))
        });
        futures::stream::iter(match messages {
            Ok(messages) => messages.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => vec![Err(e.into())],
        })
    });
    head.chain(body)
}

/// A whole result as one Arrow IPC stream (the bytes of an inline result), encoded as
/// [`flight_stream`] would send it.
pub fn ipc_stream(schema: &SchemaRef, batches: &[RecordBatch], out: &mut Vec<u8>) -> Result<(), ArrowError> {
    let mut writer = arrow::ipc::writer::StreamWriter::try_new(out, schema)?;
    for batch in batches {
        writer.write(&pond_duckling::engine::cast_to_schema(batch, schema)?)?;
    }
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, ArrayRef, DictionaryArray, Int32Array, StringArray, UnionArray};
    use arrow::buffer::ScalarBuffer;
    use arrow::datatypes::{Int8Type, UnionFields, UnionMode};
    use arrow_flight::decode::FlightRecordBatchStream;
    use futures::TryStreamExt;

    fn decode(schema: SchemaRef, batches: Vec<RecordBatch>) -> (SchemaRef, Vec<RecordBatch>) {
        let data = flight_stream(schema, futures::stream::iter(batches.into_iter().map(Ok)));
        let data = data.map_err(|s| arrow_flight::error::FlightError::Tonic(Box::new(s)));
        futures::executor::block_on(async {
            let mut stream = FlightRecordBatchStream::new_from_flight_data(data);
            let mut out = Vec::new();
            while let Some(b) = stream.try_next().await.unwrap() {
                out.push(b);
            }
            (stream.schema().cloned().unwrap(), out)
        })
    }

    #[test]
    fn a_nullable_union_streams_as_announced() {
        let fields = UnionFields::try_new(
            [0, 1],
            [
                Field::new("i32", DataType::Int32, true),
                Field::new("str", DataType::Utf8, true),
            ],
        )
        .unwrap();
        let union = UnionArray::try_new(
            fields.clone(),
            ScalarBuffer::from(vec![0i8]),
            None,
            vec![
                Arc::new(Int32Array::from(vec![1])) as ArrayRef,
                Arc::new(StringArray::from(vec![None::<&str>])),
            ],
        )
        .unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "u",
            DataType::Union(fields, UnionMode::Sparse),
            true,
        )]));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(union)]).unwrap();
        let announced = announced_schema(&schema, Dictionaries::Keep);
        let (streamed, batches) = decode(Arc::new(announced.clone()), vec![batch]);
        assert_eq!(streamed.as_ref(), &announced);
        assert_eq!(batches[0].num_rows(), 1);
    }

    #[test]
    fn dictionaries_travel_as_dictionaries_or_hydrated() {
        let dict: DictionaryArray<Int8Type> = vec!["a", "b", "a"].into_iter().collect();
        let schema = Arc::new(Schema::new(vec![Field::new("e", dict.data_type().clone(), true)]));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(dict)]).unwrap();

        let kept = Arc::new(announced_schema(&schema, Dictionaries::Keep));
        let (streamed, batches) = decode(Arc::clone(&kept), vec![batch.clone(), batch.clone()]);
        assert!(matches!(streamed.field(0).data_type(), DataType::Dictionary(..)));
        assert_eq!(batches.len(), 2);

        let hydrated = Arc::new(announced_schema(&schema, Dictionaries::Hydrate));
        let (streamed, batches) = decode(Arc::clone(&hydrated), vec![batch]);
        assert_eq!(streamed.field(0).data_type(), &DataType::Utf8);
        let values = batches[0].column(0).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(values.iter().flatten().collect::<Vec<_>>(), vec!["a", "b", "a"]);
    }

    #[test]
    fn large_batches_are_cut_into_small_messages() {
        let big = "x".repeat(4096);
        let strings = StringArray::from(vec![big.as_str(); 2048]);
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(strings)]).unwrap();
        let mut encoder = Encoder::new(Arc::clone(&schema));
        let messages = encoder.batch_messages(&batch).unwrap();
        assert!(messages.len() > 1);
        assert!(messages.iter().all(|m| m.data_body.len() <= 2 * MAX_MESSAGE_BYTES));
        let (_, batches) = decode(schema, vec![batch]);
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 2048);
    }
}
