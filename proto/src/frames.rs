//! Framed streams: a Flight data stream compressed as one zstd stream, for Pond's own client
//! over a slow link.
//!
//! gRPC compresses each message alone, so what repeats from one message to the next crosses
//! again in every message: Arrow's offsets restart at zero in every batch, a dimension's
//! strings recur, a key column's high bytes stay put. Over a 100 Mbit/s link, TPC-DS's
//! `customer_demographics` crossed as 6.6 MB compressed message by message, and as 1.6 MB in one
//! zstd stream. A framed stream keeps one compressor for the whole call: each message is
//! written into it (its length, then its protobuf bytes) and flushed, and what the flush gives
//! crosses as the body of a carrier message marked [`MARK`]. The receiver keeps one
//! decompressor and gets the messages back one at a time.
//!
//! A client asks for a framed DoGet with the request header [`HEADER`] = [`ZSTD`]; a server that
//! frames its answer says so with the same response header. A framed DoPut starts with one
//! plain message carrying only the descriptor (so the server can tell the command), then
//! carriers. Either side also tells a carrier by its mark, so a plain stream reads as before.
//!
//! Invariants:
//! - **Bounded inflation.** A receiver never holds more than one message of at most its limit
//!   plus one output chunk, however far a carrier inflates, and the decompressor's window is at
//!   most [`WINDOW_LOG`] (8 MiB): a small carrier cannot make it allocate more.
//! - **Carriers hold nothing else.** A carrier's header, descriptor and metadata are its mark
//!   only; everything a message carries is inside the stream.

use std::io::Write;

use arrow_flight::FlightData;
use bytes::{Buf, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use prost::Message;
use zstd::stream::raw::{DParameter, Decoder, Operation};

/// The header by which a client asks for a framed answer, and a server says it framed one.
pub const HEADER: &str = "x-pond-frames";
/// The only framing: one zstd stream.
pub const ZSTD: &str = "zstd";
/// A carrier's `app_metadata`.
pub const MARK: &[u8] = b"POND-FRAMES/1";
/// zstd's level: tonic's for compressed messages, several hundred MB/s on one core.
const LEVEL: i32 = 3;
/// The window (log2 bytes) in which the compressor finds repeats: a few of DuckDB's batches.
const WINDOW_LOG: u32 = 23;
/// How much inflated data the decompressor writes per step.
const CHUNK: usize = 64 << 10;

/// What can go wrong reading a framed stream.
#[derive(Debug, thiserror::Error)]
pub enum FramesError {
    #[error("compressing a framed stream failed: {0}")]
    Compressing(#[source] std::io::Error),
    #[error("a framed stream's zstd data is corrupt: {0}")]
    Corrupt(#[from] std::io::Error),
    #[error("a framed message of {size} bytes is larger than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("a framed message does not decode: {0}")]
    Malformed(#[from] prost::DecodeError),
    #[error("a framed stream ended inside a message")]
    Truncated,
    #[error("a plain message came after a framed one")]
    Mixed,
}

impl From<FramesError> for arrow_flight::error::FlightError {
    fn from(e: FramesError) -> Self {
        Self::DecodeError(e.to_string())
    }
}

/// Whether `message` carries frames.
pub fn is_carrier(message: &FlightData) -> bool {
    message.data_header.is_empty() && message.app_metadata.as_ref() == MARK
}

/// Compresses messages into carriers, one carrier per message.
pub struct Framer {
    encoder: zstd::stream::write::Encoder<'static, Vec<u8>>,
}

impl Framer {
    pub fn new() -> Result<Self, FramesError> {
        let start = || {
            let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), LEVEL)?;
            encoder.window_log(WINDOW_LOG)?;
            Ok(encoder)
        };
        Ok(Self {
            encoder: start().map_err(FramesError::Compressing)?,
        })
    }

    /// The carrier of `message`: all of it, decodable with what came before.
    pub fn carrier(&mut self, message: &FlightData) -> Result<FlightData, FramesError> {
        let bytes = message.encode_to_vec();
        let length = u32::try_from(bytes.len()).map_err(|_| FramesError::TooLarge {
            size: bytes.len(),
            limit: u32::MAX as usize,
        })?;
        let mut write = || {
            self.encoder.write_all(&length.to_le_bytes())?;
            self.encoder.write_all(&bytes)?;
            self.encoder.flush()
        };
        write().map_err(FramesError::Compressing)?;
        let body = std::mem::take(self.encoder.get_mut());
        Ok(FlightData {
            app_metadata: Bytes::from_static(MARK),
            data_body: body.into(),
            ..Default::default()
        })
    }
}

/// Turns carriers back into the messages they carry, one at a time, within a size limit.
pub struct Unframer {
    decoder: Decoder<'static>,
    limit: usize,
    /// Compressed bytes not yet inflated.
    input: Bytes,
    /// Inflated bytes not yet returned as a message.
    inflated: BytesMut,
    /// Whether a carrier came whose message is not yet whole (its bytes may sit inside the
    /// decompressor, neither input nor inflated).
    owed: bool,
}

impl Unframer {
    /// Refuses messages larger than `limit` bytes.
    pub fn new(limit: usize) -> Result<Self, FramesError> {
        let mut decoder = Decoder::new()?;
        decoder.set_parameter(DParameter::WindowLogMax(WINDOW_LOG))?;
        Ok(Self {
            decoder,
            limit,
            input: Bytes::new(),
            inflated: BytesMut::new(),
            owed: false,
        })
    }

    /// Takes a carrier's compressed bytes.
    pub fn push(&mut self, carrier: FlightData) {
        self.owed = true;
        if self.input.is_empty() {
            self.input = carrier.data_body;
        } else {
            // The end of a flush the last message did not need.
            let mut input = BytesMut::from(&self.input[..]);
            input.extend_from_slice(&carrier.data_body);
            self.input = input.freeze();
        }
    }

    /// The next whole message from what was pushed, or `None` when more is needed.
    pub fn next_message(&mut self) -> Result<Option<FlightData>, FramesError> {
        loop {
            let wanted = match self.inflated.get(..4) {
                Some(prefix) => {
                    let size = u32::from_le_bytes(prefix.try_into().expect("four bytes")) as usize;
                    if size > self.limit {
                        return Err(FramesError::TooLarge {
                            size,
                            limit: self.limit,
                        });
                    }
                    if self.inflated.len() >= 4 + size {
                        self.inflated.advance(4);
                        let message = self.inflated.split_to(size).freeze();
                        self.owed = !self.inflated.is_empty();
                        return Ok(Some(FlightData::decode(message)?));
                    }
                    4 + size - self.inflated.len()
                }
                None => 4 - self.inflated.len(),
            };
            // Inflate no more than the message needs (at most a chunk), so a carrier that
            // inflates without end is stopped at the limit.
            let start = self.inflated.len();
            self.inflated.resize(start + wanted.min(CHUNK), 0);
            let status = self.decoder.run_on_buffers(&self.input, &mut self.inflated[start..])?;
            self.inflated.truncate(start + status.bytes_written);
            self.input.advance(status.bytes_read);
            if status.bytes_written == 0 && self.input.is_empty() {
                return Ok(None);
            }
        }
    }

    /// Whether the stream may end here: every carrier's message returned.
    pub fn at_boundary(&self) -> bool {
        !self.owed && self.inflated.is_empty()
    }
}

/// `messages` as carriers, each with the messages before it in one zstd stream.
pub fn frame<E: From<FramesError> + Send + 'static>(
    messages: impl Stream<Item = Result<FlightData, E>> + Send + 'static,
) -> impl Stream<Item = Result<FlightData, E>> + Send + 'static {
    messages.scan(None::<Framer>, |framer, message| {
        let carrier = message.and_then(|message| {
            let framer = match framer {
                Some(f) => f,
                None => framer.insert(Framer::new()?),
            };
            Ok(framer.carrier(&message)?)
        });
        futures::future::ready(Some(carrier))
    })
}

/// The messages `stream` carries: carriers unframed (each message no larger than `limit`),
/// and, before the first carrier, plain messages as they are.
pub fn unframe<E: From<FramesError> + Send + 'static>(
    stream: impl Stream<Item = Result<FlightData, E>> + Send + Unpin + 'static,
    limit: usize,
) -> impl Stream<Item = Result<FlightData, E>> + Send + 'static {
    let state = (stream, None::<Unframer>, false);
    futures::stream::unfold(state, move |(mut stream, mut unframer, done)| async move {
        if done {
            return None;
        }
        let next = next_unframed(&mut stream, &mut unframer, limit).await?;
        let done = next.is_err();
        Some((next, (stream, unframer, done)))
    })
}

/// The next message of [`unframe`]'s stream.
async fn next_unframed<E: From<FramesError>>(
    stream: &mut (impl Stream<Item = Result<FlightData, E>> + Unpin),
    unframer: &mut Option<Unframer>,
    limit: usize,
) -> Option<Result<FlightData, E>> {
    loop {
        if let Some(u) = unframer.as_mut() {
            match u.next_message() {
                Ok(Some(message)) => return Some(Ok(message)),
                Ok(None) => {}
                Err(e) => return Some(Err(e.into())),
            }
        }
        let message = match stream.next().await {
            None if unframer.as_ref().is_some_and(|u| !u.at_boundary()) => {
                return Some(Err(FramesError::Truncated.into()));
            }
            None => return None,
            Some(Err(e)) => return Some(Err(e)),
            Some(Ok(message)) => message,
        };
        if !is_carrier(&message) {
            return Some(if unframer.is_some() {
                Err(FramesError::Mixed.into())
            } else {
                Ok(message)
            });
        }
        if unframer.is_none() {
            match Unframer::new(limit) {
                Ok(u) => *unframer = Some(u),
                Err(e) => return Some(Err(e.into())),
            }
        }
        if let Some(u) = unframer.as_mut() {
            u.push(message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    /// Messages like a DoGet's: a schema-sized one, then batch-sized ones that repeat each
    /// other in part, as Arrow batches of one column do.
    fn messages() -> Vec<FlightData> {
        let mut out = vec![FlightData {
            data_header: Bytes::from_static(b"schema"),
            ..Default::default()
        }];
        for batch in 0..40u32 {
            let body: Vec<u8> = (0..2048u32)
                .flat_map(|i| {
                    let mut row = i.to_le_bytes().to_vec();
                    row.extend(["north", "south", "east"][(i % 3) as usize].as_bytes());
                    row.extend(&(batch * 2048 + i).to_le_bytes());
                    row
                })
                .collect();
            out.push(FlightData {
                data_header: Bytes::from(format!("batch {batch}")),
                data_body: body.into(),
                ..Default::default()
            });
        }
        out
    }

    fn framed(messages: &[FlightData]) -> Vec<FlightData> {
        let mut framer = Framer::new().unwrap();
        messages.iter().map(|m| framer.carrier(m).unwrap()).collect()
    }

    fn unframed(carriers: Vec<FlightData>, limit: usize) -> Vec<Result<FlightData, FramesError>> {
        let stream = futures::stream::iter(carriers.into_iter().map(Ok::<_, FramesError>));
        block_on(unframe(stream, limit).collect())
    }

    #[test]
    fn a_framed_stream_reads_back_as_sent_in_fewer_bytes_than_message_by_message() {
        let sent = messages();
        let carriers = framed(&sent);
        assert!(carriers.iter().all(is_carrier));
        let framed_bytes: usize = carriers.iter().map(|c| c.encoded_len()).sum();
        let one_by_one: usize = sent
            .iter()
            .map(|m| zstd::bulk::compress(&m.encode_to_vec(), LEVEL).unwrap().len())
            .sum();
        assert!(
            framed_bytes * 2 < one_by_one,
            "framed {framed_bytes} bytes, message by message {one_by_one}"
        );
        let got: Vec<FlightData> = unframed(carriers, 1 << 20).into_iter().map(Result::unwrap).collect();
        assert_eq!(got, sent);
    }

    #[test]
    fn plain_messages_pass_before_the_first_carrier_and_not_after() {
        let sent = messages();
        let mut stream = vec![sent[0].clone()];
        stream.extend(framed(&sent[1..3]));
        let got = unframed(stream.clone(), 1 << 20);
        assert_eq!(
            got.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
            sent[..3].to_vec()
        );
        stream.push(sent[3].clone());
        let got = unframed(stream, 1 << 20);
        assert!(matches!(got.last(), Some(Err(FramesError::Mixed))), "{got:?}");
    }

    #[test]
    fn a_message_over_the_limit_is_refused_before_it_is_inflated() {
        // A gigabyte of zeros claimed as one message: a few kilobytes of carrier.
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), LEVEL).unwrap();
        encoder.write_all(&(1u32 << 30).to_le_bytes()).unwrap();
        for _ in 0..1024 {
            encoder.write_all(&[0u8; 1 << 20]).unwrap();
        }
        let body = encoder.finish().unwrap();
        assert!(body.len() < 64 << 10, "{} bytes", body.len());
        let carrier = FlightData {
            app_metadata: Bytes::from_static(MARK),
            data_body: body.into(),
            ..Default::default()
        };
        let got = unframed(vec![carrier], 1 << 20);
        assert!(
            matches!(
                got[..],
                [Err(FramesError::TooLarge {
                    size: 1_073_741_824,
                    limit: 1_048_576
                })]
            ),
            "{got:?}"
        );
    }

    #[test]
    fn a_stream_cut_inside_a_message_or_corrupt_fails() {
        let sent = messages();
        let mut carriers = framed(&sent[..2]);
        let last = carriers.pop().unwrap();
        let half = last.data_body.slice(..last.data_body.len() / 2);
        carriers.push(FlightData {
            data_body: half,
            ..last.clone()
        });
        let got = unframed(carriers, 1 << 20);
        assert!(matches!(got.last(), Some(Err(FramesError::Truncated))), "{got:?}");

        let garbage = FlightData {
            data_body: Bytes::from_static(b"not zstd at all"),
            ..last
        };
        let got = unframed(vec![garbage], 1 << 20);
        assert!(matches!(got[..], [Err(FramesError::Corrupt(_))]), "{got:?}");
    }
}
