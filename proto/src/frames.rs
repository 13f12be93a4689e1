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
//! carriers; Pond's client sends one only to a Pond server of its version. Either side tells a
//! carrier by its mark, so a plain stream reads as before.
//!
//! Invariants:
//! - **One message per carrier, bounded.** A carrier inflates to exactly one message, whose
//!   length comes first and is checked against the receiver's limit before anything else
//!   inflates; the message's buffer grows as its bytes arrive, never past that length; a
//!   carrier with more in it is refused. So a carrier inflates to at most the limit, and the
//!   decompressor's window is at most [`WINDOW_LOG`] (8 MiB): a small carrier cannot make its
//!   receiver allocate or work more than a plain message of that size would.
//! - **Carriers hold nothing else.** A carrier's header, descriptor and metadata are its mark
//!   only; everything a message carries is inside the stream.

use std::io::Write;

use arrow_flight::FlightData;
use bytes::Bytes;
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
    #[error("zstd could not start or compress: {0}")]
    Zstd(#[source] std::io::Error),
    #[error("a framed stream's zstd data is corrupt: {0}")]
    Corrupt(#[source] std::io::Error),
    #[error("a framed message of {size} bytes is larger than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("a framed message is empty")]
    Empty,
    #[error("a carrier holds more than one message")]
    Extra,
    #[error("a framed message does not decode: {0}")]
    Malformed(#[from] prost::DecodeError),
    #[error("a carrier ends inside its message")]
    Truncated,
    #[error("a plain message came after a framed one")]
    Mixed,
}

impl From<FramesError> for arrow_flight::error::FlightError {
    fn from(e: FramesError) -> Self {
        match e {
            FramesError::Zstd(_) => Self::ExternalError(Box::new(e)),
            other => Self::DecodeError(other.to_string()),
        }
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
            encoder: start().map_err(FramesError::Zstd)?,
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
        write().map_err(FramesError::Zstd)?;
        let body = std::mem::take(self.encoder.get_mut());
        Ok(FlightData {
            app_metadata: Bytes::from_static(MARK),
            data_body: body.into(),
            ..Default::default()
        })
    }
}

/// Turns carriers back into the messages they carry, one message per carrier, each within a
/// size limit.
pub struct Unframer {
    decoder: Decoder<'static>,
    limit: usize,
}

impl Unframer {
    /// Refuses messages larger than `limit` bytes.
    pub fn new(limit: usize) -> Result<Self, FramesError> {
        let mut decoder = Decoder::new().map_err(FramesError::Zstd)?;
        decoder
            .set_parameter(DParameter::WindowLogMax(WINDOW_LOG))
            .map_err(FramesError::Zstd)?;
        Ok(Self { decoder, limit })
    }

    /// The one message `carrier` holds, read with the carriers before it.
    pub fn message(&mut self, carrier: &FlightData) -> Result<FlightData, FramesError> {
        let mut input: &[u8] = &carrier.data_body;
        let mut prefix = [0u8; 4];
        self.inflate(&mut input, &mut prefix)?;
        let size = u32::from_le_bytes(prefix) as usize;
        if size == 0 {
            return Err(FramesError::Empty);
        }
        if size > self.limit {
            return Err(FramesError::TooLarge {
                size,
                limit: self.limit,
            });
        }
        // Grown as the message inflates, never past its size: a carrier that claims the
        // limit costs memory only as its bytes arrive.
        let mut message: Vec<u8> = Vec::new();
        while message.len() < size {
            let filled = message.len();
            let target = size.min((2 * filled).max(CHUNK));
            message.reserve_exact(target - filled);
            message.resize(target, 0);
            self.inflate(&mut input, &mut message[filled..])?;
        }
        // What is left of the carrier ends the flush; it may not inflate to anything.
        loop {
            let status = self
                .decoder
                .run_on_buffers(input, &mut [0u8; 1])
                .map_err(FramesError::Corrupt)?;
            if status.bytes_written > 0 {
                return Err(FramesError::Extra);
            }
            input = &input[status.bytes_read..];
            if input.is_empty() {
                break;
            }
            if status.bytes_read == 0 {
                return Err(FramesError::Extra);
            }
        }
        Ok(FlightData::decode(Bytes::from(message))?)
    }

    /// Fills `out` from `input` (and what the decompressor holds).
    fn inflate(&mut self, input: &mut &[u8], out: &mut [u8]) -> Result<(), FramesError> {
        let mut filled = 0;
        while filled < out.len() {
            let status = self
                .decoder
                .run_on_buffers(input, &mut out[filled..])
                .map_err(FramesError::Corrupt)?;
            *input = &input[status.bytes_read..];
            filled += status.bytes_written;
            if status.bytes_read == 0 && status.bytes_written == 0 {
                return Err(FramesError::Truncated);
            }
        }
        Ok(())
    }
}

/// `messages` as carriers, each with the messages before it in one zstd stream. The stream
/// ends after its first error.
pub fn frame<E: From<FramesError> + Send + 'static>(
    messages: impl Stream<Item = Result<FlightData, E>> + Send + 'static,
) -> impl Stream<Item = Result<FlightData, E>> + Send + 'static {
    messages.scan((None::<Framer>, false), |(framer, failed), message| {
        if *failed {
            return futures::future::ready(None);
        }
        let carrier = message.and_then(|message| {
            let framer = match framer {
                Some(f) => f,
                None => framer.insert(Framer::new()?),
            };
            Ok(framer.carrier(&message)?)
        });
        *failed = carrier.is_err();
        futures::future::ready(Some(carrier))
    })
}

/// The messages `stream` carries: carriers unframed (each message no larger than `limit`),
/// and, before the first carrier, plain messages as they are. The stream ends after its first
/// error.
pub fn unframe<E: From<FramesError> + Send + 'static>(
    stream: impl Stream<Item = Result<FlightData, E>> + Send + 'static,
    limit: usize,
) -> impl Stream<Item = Result<FlightData, E>> + Send + 'static {
    stream.scan((None::<Unframer>, false), move |(unframer, failed), message| {
        if *failed {
            return futures::future::ready(None);
        }
        let message = message.and_then(|message| match unframer {
            None if !is_carrier(&message) => Ok(message),
            Some(_) if !is_carrier(&message) => Err(FramesError::Mixed.into()),
            _ => {
                let u = match unframer {
                    Some(u) => u,
                    None => unframer.insert(Unframer::new(limit)?),
                };
                Ok(u.message(&message)?)
            }
        });
        *failed = message.is_err();
        futures::future::ready(Some(message))
    })
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

    /// A carrier of `parts` written as they are, after `framer`'s earlier carriers if given.
    fn raw_carrier(window_log: u32, parts: &[&[u8]]) -> FlightData {
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), LEVEL).unwrap();
        encoder.window_log(window_log).unwrap();
        for part in parts {
            encoder.write_all(part).unwrap();
        }
        encoder.flush().unwrap();
        FlightData {
            app_metadata: Bytes::from_static(MARK),
            data_body: std::mem::take(encoder.get_mut()).into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_carrier_holds_one_nonempty_message_and_nothing_more() {
        let message = messages()[1].encode_to_vec();
        let length = (message.len() as u32).to_le_bytes();
        let one = raw_carrier(WINDOW_LOG, &[&length, &message]);
        assert_eq!(unframed(vec![one], 1 << 20).len(), 1);

        // A second message in the same carrier, or a flood of zeros after the first: refused
        // without inflating the rest.
        let two = raw_carrier(WINDOW_LOG, &[&length, &message, &length, &message]);
        let got = unframed(vec![two], 1 << 20);
        assert!(matches!(got[..], [Err(FramesError::Extra)]), "{got:?}");
        let zeros = vec![0u8; 64 << 20];
        let flood = raw_carrier(WINDOW_LOG, &[&length, &message, &zeros]);
        assert!(flood.data_body.len() < 64 << 10);
        let got = unframed(vec![flood], 1 << 20);
        assert!(matches!(got[..], [Err(FramesError::Extra)]), "{got:?}");

        let empty = raw_carrier(WINDOW_LOG, &[&0u32.to_le_bytes()]);
        let got = unframed(vec![empty], 1 << 20);
        assert!(matches!(got[..], [Err(FramesError::Empty)]), "{got:?}");

        let nothing = FlightData {
            app_metadata: Bytes::from_static(MARK),
            ..Default::default()
        };
        let got = unframed(vec![nothing], 1 << 20);
        assert!(matches!(got[..], [Err(FramesError::Truncated)]), "{got:?}");
    }

    #[test]
    fn a_stream_asking_for_a_window_over_8_mib_is_refused() {
        let message = messages()[1].encode_to_vec();
        let length = (message.len() as u32).to_le_bytes();
        let wide = raw_carrier(27, &[&length, &message]);
        let got = unframed(vec![wide], 1 << 20);
        assert!(matches!(got[..], [Err(FramesError::Corrupt(_))]), "{got:?}");
    }

    #[test]
    fn framing_stops_at_the_first_error() {
        let sent = messages();
        let input = vec![Ok(sent[0].clone()), Err(FramesError::Truncated), Ok(sent[1].clone())];
        let got: Vec<Result<FlightData, FramesError>> = block_on(frame(futures::stream::iter(input)).collect());
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].as_ref().is_ok_and(is_carrier));
        assert!(matches!(got[1], Err(FramesError::Truncated)));
    }
}
