//! What personalization persists, and the seam to the encrypted store.
//!
//! Records: one `meta` (base identity, classes, example index), one `example/<id>` per
//! labelled example (label, time, split, embedding, optionally the raw inputs) and one `head`
//! (the accepted head's parameters). All of them go through [`RecordStore`], whose production
//! implementation is the encrypted [`Store`](crate::store::Store)'s key/value collection.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use ndarray::{Array1, Array2};
use zeroize::Zeroizing;

use super::backbone::BaseModelId;
use super::codec::{Reader, Writer};
use super::error::{PersonalizeError, Result};
use super::prototype::PrototypeHead;
use super::softmax::SoftmaxHead;
use crate::inference::{DType, Tensor};

/// Key of the metadata record.
pub(crate) const META_KEY: &[u8] = b"meta";
/// Key of the accepted head.
pub(crate) const HEAD_KEY: &[u8] = b"head";

/// Key of one example.
pub(crate) fn example_key(id: u64) -> Vec<u8> {
    let mut k = b"example/".to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// Where records live: blobs under byte keys in one namespace.
pub(crate) trait RecordStore: Send + Sync {
    /// Stores `value` under `key`, replacing any previous value.
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()>;
    /// The value under `key`, if any; wiped from memory when dropped.
    fn get(&self, key: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>>;
    /// Removes `key` if present.
    fn delete(&self, key: &[u8]) -> Result<()>;
    /// Removes every record of personalization.
    fn clear(&self) -> Result<()>;
}

/// Records kept in memory only: lost when the personalizer is dropped, never on disk.
#[derive(Default)]
pub(crate) struct MemoryRecords {
    map: Mutex<HashMap<Vec<u8>, Zeroizing<Vec<u8>>>>,
}

impl MemoryRecords {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Zeroizing<Vec<u8>>>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RecordStore for MemoryRecords {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.map()
            .insert(key.to_vec(), Zeroizing::new(value.to_vec()));
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>> {
        Ok(self.map().get(key).cloned())
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        self.map().remove(key);
        Ok(())
    }

    fn clear(&self) -> Result<()> {
        self.map().clear();
        Ok(())
    }
}

/// The personalization's index and class table.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MetaRecord {
    pub(crate) base: BaseModelId,
    /// One entry per class: `None` for a base class, the user's name for a defined one.
    pub(crate) classes: Vec<Option<String>>,
    /// Ids of stored examples, oldest first.
    pub(crate) example_ids: Vec<u64>,
    pub(crate) next_example_id: u64,
    pub(crate) updates: u64,
}

const META_TAG: &[u8; 4] = b"EKPM";
const EXAMPLE_TAG: &[u8; 4] = b"EKPE";
const HEAD_TAG: &[u8; 4] = b"EKPH";
const VERSION: u8 = 1;

fn write_base(w: &mut Writer, base: &BaseModelId) {
    w.bytes(base.model_sha256())
        .bytes(base.embedding_output().as_bytes())
        .len(base.dim());
}

fn read_base(r: &mut Reader<'_>) -> Result<BaseModelId> {
    let sha: [u8; 32] = r
        .bytes()?
        .try_into()
        .map_err(|_| PersonalizeError::MalformedRecord("base model id"))?;
    let name = std::str::from_utf8(r.bytes()?)
        .map_err(|_| PersonalizeError::MalformedRecord("base model id"))?
        .to_string();
    let dim = usize::try_from(r.u64()?)
        .map_err(|_| PersonalizeError::MalformedRecord("base model id"))?;
    Ok(BaseModelId::new(sha, name, dim))
}

fn check_version(version: u8, what: &'static str) -> Result<()> {
    if version == VERSION {
        Ok(())
    } else {
        Err(PersonalizeError::MalformedRecord(what))
    }
}

impl MetaRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(META_TAG, VERSION);
        write_base(&mut w, &self.base);
        w.len(self.classes.len());
        for class in &self.classes {
            match class {
                None => w.u8(0),
                Some(name) => w.u8(1).bytes(name.as_bytes()),
            };
        }
        w.len(self.example_ids.len());
        for id in &self.example_ids {
            w.u64(*id);
        }
        w.u64(self.next_example_id).u64(self.updates);
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "meta";
        let (mut r, version) = Reader::new(bytes, META_TAG, WHAT)?;
        check_version(version, WHAT)?;
        let base = read_base(&mut r)?;
        let n = r.len(1)?;
        let mut classes = Vec::with_capacity(n);
        for _ in 0..n {
            classes.push(match r.u8()? {
                0 => None,
                1 => Some(
                    std::str::from_utf8(r.bytes()?)
                        .map_err(|_| PersonalizeError::MalformedRecord(WHAT))?
                        .to_string(),
                ),
                _ => return Err(PersonalizeError::MalformedRecord(WHAT)),
            });
        }
        let n = r.len(8)?;
        let example_ids = (0..n).map(|_| r.u64()).collect::<Result<Vec<_>>>()?;
        let next_example_id = r.u64()?;
        let updates = r.u64()?;
        r.end()?;
        Ok(Self {
            base,
            classes,
            example_ids,
            next_example_id,
            updates,
        })
    }
}

/// One named input tensor kept so an example can be re-embedded by a new base model.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StoredInput {
    pub(crate) name: String,
    pub(crate) tensor: Tensor,
}

/// One labelled example.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ExampleRecord {
    pub(crate) id: u64,
    pub(crate) class: u32,
    pub(crate) created_unix_ms: u64,
    pub(crate) held_out: bool,
    pub(crate) embedding: Array1<f32>,
    pub(crate) inputs: Vec<StoredInput>,
}

fn dtype_code(dtype: DType) -> Option<u8> {
    Some(match dtype {
        DType::F32 => 1,
        DType::F64 => 2,
        DType::I64 => 3,
        DType::I32 => 4,
        DType::I8 => 5,
        DType::U8 => 6,
        _ => return None,
    })
}

/// Raw little-endian bytes of a tensor of a storable element type.
fn tensor_bytes(t: &Tensor) -> Result<(u8, Vec<u8>)> {
    fn le<T: crate::inference::Element, const N: usize>(
        t: &Tensor,
        f: fn(T) -> [u8; N],
    ) -> Result<Vec<u8>> {
        Ok(t.as_slice::<T>()
            .map_err(PersonalizeError::Inference)?
            .iter()
            .flat_map(|&v| f(v))
            .collect())
    }
    let code = dtype_code(t.dtype()).ok_or(PersonalizeError::UnsupportedModel(
        "this input element type cannot be kept for re-embedding",
    ))?;
    let bytes = match t.dtype() {
        DType::F32 => le::<f32, 4>(t, f32::to_le_bytes)?,
        DType::F64 => le::<f64, 8>(t, f64::to_le_bytes)?,
        DType::I64 => le::<i64, 8>(t, i64::to_le_bytes)?,
        DType::I32 => le::<i32, 4>(t, i32::to_le_bytes)?,
        DType::I8 => le::<i8, 1>(t, i8::to_le_bytes)?,
        _ => le::<u8, 1>(t, u8::to_le_bytes)?,
    };
    Ok((code, bytes))
}

fn tensor_from_bytes(code: u8, shape: &[usize], raw: &[u8]) -> Result<Tensor> {
    fn from<T: crate::inference::Element, const N: usize>(
        shape: &[usize],
        raw: &[u8],
        f: fn([u8; N]) -> T,
    ) -> Result<Tensor> {
        let data: Vec<T> = raw
            .chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                f(a)
            })
            .collect();
        Tensor::from_shape_vec(shape, data)
            .map_err(|_| PersonalizeError::MalformedRecord("example input"))
    }
    match code {
        1 => from::<f32, 4>(shape, raw, f32::from_le_bytes),
        2 => from::<f64, 8>(shape, raw, f64::from_le_bytes),
        3 => from::<i64, 8>(shape, raw, i64::from_le_bytes),
        4 => from::<i32, 4>(shape, raw, i32::from_le_bytes),
        5 => from::<i8, 1>(shape, raw, i8::from_le_bytes),
        6 => from::<u8, 1>(shape, raw, u8::from_le_bytes),
        _ => Err(PersonalizeError::MalformedRecord("example input")),
    }
}

impl ExampleRecord {
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let mut w = Writer::new(EXAMPLE_TAG, VERSION);
        w.u64(self.id)
            .u32(self.class)
            .u64(self.created_unix_ms)
            .u8(u8::from(self.held_out))
            .f32s(self.embedding.iter());
        w.len(self.inputs.len());
        for input in &self.inputs {
            let (code, raw) = tensor_bytes(&input.tensor)?;
            w.bytes(input.name.as_bytes()).u8(code);
            w.len(input.tensor.shape().len());
            for &d in input.tensor.shape() {
                w.len(d);
            }
            w.bytes(&raw);
        }
        Ok(w.finish())
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "example";
        let bad = || PersonalizeError::MalformedRecord(WHAT);
        let (mut r, version) = Reader::new(bytes, EXAMPLE_TAG, WHAT)?;
        check_version(version, WHAT)?;
        let id = r.u64()?;
        let class = r.u32()?;
        let created_unix_ms = r.u64()?;
        let held_out = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(bad()),
        };
        let embedding = Array1::from(r.f32s()?);
        let n = r.len(1)?;
        let mut inputs = Vec::with_capacity(n);
        for _ in 0..n {
            let name = std::str::from_utf8(r.bytes()?)
                .map_err(|_| bad())?
                .to_string();
            let code = r.u8()?;
            let rank = r.len(8)?;
            let shape = (0..rank)
                .map(|_| usize::try_from(r.u64()?).map_err(|_| bad()))
                .collect::<Result<Vec<_>>>()?;
            let raw = r.bytes()?;
            inputs.push(StoredInput {
                name,
                tensor: tensor_from_bytes(code, &shape, raw)?,
            });
        }
        r.end()?;
        Ok(Self {
            id,
            class,
            created_unix_ms,
            held_out,
            embedding,
            inputs,
        })
    }
}

/// The trained parameters of a head.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum HeadParams {
    Softmax(SoftmaxHead),
    Prototype(PrototypeHead),
}

/// The accepted head and what it was trained on.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HeadRecord {
    pub(crate) base: BaseModelId,
    pub(crate) params: HeadParams,
    pub(crate) temperature: f32,
    /// Training examples folded into the head.
    pub(crate) trained_on: u32,
    /// Every training example with an id below this is folded in.
    pub(crate) next_unseen_id: u64,
}

impl HeadRecord {
    pub(crate) fn classes(&self) -> usize {
        match &self.params {
            HeadParams::Softmax(h) => h.classes(),
            HeadParams::Prototype(h) => h.classes(),
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(HEAD_TAG, VERSION);
        write_base(&mut w, &self.base);
        w.f32(self.temperature)
            .u32(self.trained_on)
            .u64(self.next_unseen_id);
        match &self.params {
            HeadParams::Softmax(h) => {
                w.u8(1).len(h.classes()).len(h.dim());
                w.f32s(h.weights().iter()).f32s(h.bias().iter());
            }
            HeadParams::Prototype(h) => {
                w.u8(2).len(h.classes()).len(h.dim()).f32(h.scale());
                w.f32s(h.sums().iter());
                for &c in h.counts() {
                    w.u32(c);
                }
            }
        }
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "head";
        let bad = || PersonalizeError::MalformedRecord(WHAT);
        let (mut r, version) = Reader::new(bytes, HEAD_TAG, WHAT)?;
        check_version(version, WHAT)?;
        let base = read_base(&mut r)?;
        let temperature = r.f32()?;
        let trained_on = r.u32()?;
        let next_unseen_id = r.u64()?;
        let kind = r.u8()?;
        let classes = usize::try_from(r.u64()?).map_err(|_| bad())?;
        let dim = usize::try_from(r.u64()?).map_err(|_| bad())?;
        let params = match kind {
            1 => {
                let w = Array2::from_shape_vec((classes, dim), r.f32s()?).map_err(|_| bad())?;
                let b = Array1::from(r.f32s()?);
                HeadParams::Softmax(SoftmaxHead::from_parts(w, b).map_err(|_| bad())?)
            }
            2 => {
                let scale = r.f32()?;
                let sums = Array2::from_shape_vec((classes, dim), r.f32s()?).map_err(|_| bad())?;
                let counts = (0..classes).map(|_| r.u32()).collect::<Result<Vec<_>>>()?;
                HeadParams::Prototype(
                    PrototypeHead::from_parts(sums, counts, scale).map_err(|_| bad())?,
                )
            }
            _ => return Err(bad()),
        };
        r.end()?;
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(bad());
        }
        Ok(Self {
            base,
            params,
            temperature,
            trained_on,
            next_unseen_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn base() -> BaseModelId {
        BaseModelId::new([7; 32], "embedding", 2)
    }

    #[test]
    fn meta_round_trips() {
        let meta = MetaRecord {
            base: base(),
            classes: vec![None, Some("my cat".into())],
            example_ids: vec![1, 5, 9],
            next_example_id: 10,
            updates: 3,
        };
        assert_eq!(MetaRecord::decode(&meta.encode()).unwrap(), meta);
    }

    #[test]
    fn example_round_trips_with_inputs() {
        let ex = ExampleRecord {
            id: 4,
            class: 1,
            created_unix_ms: 1_700_000_000_000,
            held_out: true,
            embedding: array![0.5f32, -1.5],
            inputs: vec![
                StoredInput {
                    name: "image".into(),
                    tensor: Tensor::from(array![[1.0f32, 2.0], [3.0, 4.0]]),
                },
                StoredInput {
                    name: "ids".into(),
                    tensor: Tensor::from(array![[7i64, 8, 9]]),
                },
            ],
        };
        let back = ExampleRecord::decode(&ex.encode().unwrap()).unwrap();
        assert_eq!(back, ex);
    }

    #[test]
    fn heads_round_trip_bit_exactly() {
        let soft = HeadRecord {
            base: base(),
            params: HeadParams::Softmax(
                SoftmaxHead::from_parts(array![[0.1f32, 0.2], [0.3, -0.4]], array![1.0f32, -1.0])
                    .unwrap(),
            ),
            temperature: 1.5,
            trained_on: 12,
            next_unseen_id: 13,
        };
        assert_eq!(HeadRecord::decode(&soft.encode()).unwrap(), soft);
        let mut proto = PrototypeHead::new(2, 2, 10.0).unwrap();
        proto.add(array![1.0f32, 0.0].view(), 1).unwrap();
        let proto = HeadRecord {
            params: HeadParams::Prototype(proto),
            ..soft
        };
        assert_eq!(HeadRecord::decode(&proto.encode()).unwrap(), proto);
    }

    #[test]
    fn damaged_records_are_typed_errors() {
        let bytes = MetaRecord {
            base: base(),
            classes: vec![None],
            example_ids: vec![],
            next_example_id: 0,
            updates: 0,
        }
        .encode();
        for cut in 0..bytes.len() {
            assert!(MetaRecord::decode(&bytes[..cut]).is_err());
        }
        assert!(HeadRecord::decode(&bytes).is_err());
        assert!(ExampleRecord::decode(b"EKPE\x09").is_err());
    }
}
