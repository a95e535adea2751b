//! The in-memory attribute index of one collection: kind and payload postings as roaring bitmaps
//! of internal ids. Filters are evaluated here into the allowed-id set that the vector index
//! consults during its graph walk (never by post-filtering a short list).
//!
//! It holds live documents only: an upsert removes the old version's postings and adds the new
//! ones, a delete removes them. A snapshot of it is stored in RocksDB with every sealed segment;
//! a restart loads the latest snapshot, drops the ids tombstoned since, and adds the documents
//! written after it (see `Collection::open`), instead of scanning every document.
use std::collections::{BTreeMap, HashMap};

use roaring::RoaringBitmap;

use super::model::{DocMeta, FieldMatch, Filter, Range, Value};

/// Exact-match key of a scalar value. Ints and floats share one numeric domain (f64 bits, with
/// -0.0 folded into 0.0) so `eq 3` matches a stored `3.0`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Str(String),
    Num(u64),
    Bool(bool),
}

fn num_key(x: f64) -> Key {
    Key::Num(if x == 0.0 { 0.0f64.to_bits() } else { x.to_bits() })
}

/// Total order on finite f64 for the range map; -0.0 is folded into 0.0 on the way in
/// ([`Num::new`]) so that the total order agrees with numeric equality.
#[derive(Debug, Clone, Copy)]
struct Num(f64);

impl Num {
    fn new(x: f64) -> Self {
        Num(if x == 0.0 { 0.0 } else { x })
    }
}

impl PartialEq for Num {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for Num {}
impl PartialOrd for Num {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Num {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[derive(Debug, Default)]
struct FieldIndex {
    present: RoaringBitmap,
    exact: HashMap<Key, RoaringBitmap>,
    numeric: BTreeMap<Num, RoaringBitmap>,
}

impl FieldIndex {
    fn keys(value: &Value) -> Vec<Key> {
        match value {
            Value::Str(s) => vec![Key::Str(s.clone())],
            Value::Int(i) => vec![num_key(*i as f64)],
            Value::Float(f) => vec![num_key(*f)],
            Value::Bool(b) => vec![Key::Bool(*b)],
            Value::StrList(l) => l.iter().map(|s| Key::Str(s.clone())).collect(),
        }
    }

    fn numeric(value: &Value) -> Option<f64> {
        match value {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    fn add(&mut self, iid: u32, value: &Value) {
        self.present.insert(iid);
        for k in Self::keys(value) {
            self.exact.entry(k).or_default().insert(iid);
        }
        if let Some(x) = Self::numeric(value) {
            self.numeric.entry(Num::new(x)).or_default().insert(iid);
        }
    }

    fn remove(&mut self, iid: u32, value: &Value) {
        self.present.remove(iid);
        for k in Self::keys(value) {
            if let Some(b) = self.exact.get_mut(&k) {
                b.remove(iid);
                // Empty postings are dropped so memory follows the live data, not its history.
                if b.is_empty() {
                    self.exact.remove(&k);
                }
            }
        }
        if let Some(x) = Self::numeric(value)
            && let Some(b) = self.numeric.get_mut(&Num::new(x))
        {
            b.remove(iid);
            if b.is_empty() {
                self.numeric.remove(&Num::new(x));
            }
        }
    }

    fn range(&self, r: &Range) -> RoaringBitmap {
        use std::ops::Bound;
        let lower = match r.lower {
            Some((x, true)) => Bound::Included(Num::new(x)),
            Some((x, false)) => Bound::Excluded(Num::new(x)),
            None => Bound::Unbounded,
        };
        let upper = match r.upper {
            Some((x, true)) => Bound::Included(Num::new(x)),
            Some((x, false)) => Bound::Excluded(Num::new(x)),
            None => Bound::Unbounded,
        };
        // BTreeMap::range panics on inverted or (x, x)-excluded bounds; such a range is empty.
        if let (Some((lo, lo_inc)), Some((hi, hi_inc))) = (r.lower, r.upper)
            && (lo > hi || (lo == hi && !(lo_inc && hi_inc)))
        {
            return RoaringBitmap::new();
        }
        let mut out = RoaringBitmap::new();
        for b in self.numeric.range((lower, upper)).map(|(_, b)| b) {
            out |= b;
        }
        out
    }
}

/// Kind and payload postings of one collection's live documents.
#[derive(Debug, Default)]
pub struct PayloadIndex {
    live: RoaringBitmap,
    kinds: [RoaringBitmap; 3],
    fields: HashMap<String, FieldIndex>,
}

impl PayloadIndex {
    /// Adds a live document.
    pub fn add(&mut self, iid: u32, meta: &DocMeta) {
        self.live.insert(iid);
        self.kinds[meta.kind.index()].insert(iid);
        for (k, v) in &meta.payload {
            self.fields.entry(k.clone()).or_default().add(iid, v);
        }
    }

    /// Removes a document; `meta` must be what was added for `iid`.
    pub fn remove(&mut self, iid: u32, meta: &DocMeta) {
        self.live.remove(iid);
        self.kinds[meta.kind.index()].remove(iid);
        for (k, v) in &meta.payload {
            if let Some(f) = self.fields.get_mut(k) {
                f.remove(iid, v);
                if f.present.is_empty() {
                    self.fields.remove(k);
                }
            }
        }
    }

    /// Live internal ids.
    pub fn live(&self) -> &RoaringBitmap {
        &self.live
    }

    /// Internal ids of live documents matching `filter`.
    pub fn evaluate(&self, filter: &Filter) -> RoaringBitmap {
        match filter {
            Filter::Kind(kinds) => {
                let mut out = RoaringBitmap::new();
                for k in kinds {
                    out |= &self.kinds[k.index()];
                }
                out
            }
            Filter::Field { key, matches } => {
                let Some(f) = self.fields.get(key) else {
                    return RoaringBitmap::new();
                };
                match matches {
                    FieldMatch::Exists => f.present.clone(),
                    FieldMatch::Range(r) => f.range(r),
                    FieldMatch::AnyOf(values) => {
                        let mut out = RoaringBitmap::new();
                        for v in values {
                            for k in FieldIndex::keys(v) {
                                if let Some(b) = f.exact.get(&k) {
                                    out |= b;
                                }
                            }
                        }
                        out
                    }
                }
            }
            Filter::AllOf(fs) => {
                let mut it = fs.iter();
                let Some(first) = it.next() else {
                    return self.live.clone();
                };
                let mut out = self.evaluate(first);
                for f in it {
                    if out.is_empty() {
                        break;
                    }
                    out &= self.evaluate(f);
                }
                out
            }
            Filter::AnyOf(fs) => {
                let mut out = RoaringBitmap::new();
                for f in fs {
                    out |= self.evaluate(f);
                }
                out
            }
            Filter::NoneOf(fs) => {
                let mut out = self.live.clone();
                for f in fs {
                    out -= self.evaluate(f);
                }
                out
            }
        }
    }

    /// Serialises the index (the snapshot stored with each sealed segment, so a restart loads
    /// bitmaps instead of scanning every document). `covers` is the first internal id the
    /// snapshot does not know about. Layout, little-endian: magic, version, covers, then
    /// length-prefixed roaring bitmaps and strings.
    pub fn encode(&self, covers: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 << 16);
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        out.extend_from_slice(&covers.to_le_bytes());
        put_bitmap(&mut out, &self.live);
        for k in &self.kinds {
            put_bitmap(&mut out, k);
        }
        out.extend_from_slice(&(self.fields.len() as u32).to_le_bytes());
        for (name, f) in &self.fields {
            put_bytes(&mut out, name.as_bytes());
            put_bitmap(&mut out, &f.present);
            out.extend_from_slice(&(f.exact.len() as u32).to_le_bytes());
            for (key, b) in &f.exact {
                match key {
                    Key::Str(s) => {
                        out.push(0);
                        put_bytes(&mut out, s.as_bytes());
                    }
                    Key::Num(bits) => {
                        out.push(1);
                        out.extend_from_slice(&bits.to_le_bytes());
                    }
                    Key::Bool(v) => {
                        out.push(2);
                        out.push(*v as u8);
                    }
                }
                put_bitmap(&mut out, b);
            }
            out.extend_from_slice(&(f.numeric.len() as u32).to_le_bytes());
            for (x, b) in &f.numeric {
                out.extend_from_slice(&x.0.to_le_bytes());
                put_bitmap(&mut out, b);
            }
        }
        out
    }

    /// Inverse of [`PayloadIndex::encode`]; every length is checked against the input.
    pub fn decode(bytes: &[u8]) -> Result<(Self, u32), String> {
        let mut r = Reader { b: bytes };
        if r.take(SNAPSHOT_MAGIC.len())? != SNAPSHOT_MAGIC {
            return Err("bad magic".into());
        }
        let version = r.u32()?;
        if version != SNAPSHOT_VERSION {
            return Err(format!("version {version}, this build reads {SNAPSHOT_VERSION}"));
        }
        let covers = r.u32()?;
        let live = r.bitmap()?;
        let kinds = [r.bitmap()?, r.bitmap()?, r.bitmap()?];
        let mut fields = HashMap::new();
        for _ in 0..r.u32()? {
            let name = r.string()?;
            let mut f = FieldIndex { present: r.bitmap()?, ..Default::default() };
            for _ in 0..r.u32()? {
                let key = match r.take(1)?[0] {
                    0 => Key::Str(r.string()?),
                    1 => Key::Num(u64::from_le_bytes(r.take(8)?.try_into().unwrap())),
                    2 => Key::Bool(r.take(1)?[0] != 0),
                    t => return Err(format!("unknown key tag {t}")),
                };
                f.exact.insert(key, r.bitmap()?);
            }
            for _ in 0..r.u32()? {
                let x = f64::from_le_bytes(r.take(8)?.try_into().unwrap());
                f.numeric.insert(Num::new(x), r.bitmap()?);
            }
            fields.insert(name, f);
        }
        if !r.b.is_empty() {
            return Err(format!("{} trailing bytes", r.b.len()));
        }
        Ok((Self { live, kinds, fields }, covers))
    }

    /// Drops the given ids (deleted after the snapshot was taken) from every posting.
    pub fn forget(&mut self, dead: &RoaringBitmap) {
        if dead.is_empty() {
            return;
        }
        self.live -= dead;
        for k in &mut self.kinds {
            *k -= dead;
        }
        self.fields.retain(|_, f| {
            f.present -= dead;
            f.exact.retain(|_, b| {
                *b -= dead;
                !b.is_empty()
            });
            f.numeric.retain(|_, b| {
                *b -= dead;
                !b.is_empty()
            });
            !f.present.is_empty()
        });
    }
}

const SNAPSHOT_MAGIC: &[u8; 8] = b"HVPAYIX\0";
const SNAPSHOT_VERSION: u32 = 1;

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_bitmap(out: &mut Vec<u8>, b: &RoaringBitmap) {
    out.extend_from_slice(&(b.serialized_size() as u32).to_le_bytes());
    b.serialize_into(&mut *out).expect("writing to a Vec cannot fail");
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.b.len() < n {
            return Err(format!("truncated: need {n} bytes, {} left", self.b.len()));
        }
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|e| e.to_string())
    }

    fn bitmap(&mut self) -> Result<RoaringBitmap, String> {
        let n = self.u32()? as usize;
        RoaringBitmap::deserialize_from(self.take(n)?).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::model::{Kind, Payload};
    use proptest::prelude::*;

    fn doc(kind: Kind, fields: &[(&str, Value)]) -> DocMeta {
        let payload: Payload = fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        DocMeta { id: String::new(), kind, payload, seq: 0 }
    }

    fn field(key: &str, m: FieldMatch) -> Filter {
        Filter::Field { key: key.into(), matches: m }
    }

    fn ids(b: RoaringBitmap) -> Vec<u32> {
        b.iter().collect()
    }

    #[test]
    fn conditions_and_combinators() {
        let mut ix = PayloadIndex::default();
        ix.add(
            1,
            &doc(Kind::Resume, &[("city", Value::Str("Oslo".into())), ("years", Value::Int(5))]),
        );
        ix.add(
            2,
            &doc(
                Kind::Resume,
                &[("city", Value::Str("Rome".into())), ("years", Value::Float(5.0))],
            ),
        );
        ix.add(3, &doc(Kind::Jd, &[("skills", Value::StrList(vec!["rust".into(), "go".into()]))]));
        ix.add(4, &doc(Kind::Other, &[("remote", Value::Bool(true)), ("years", Value::Int(-1))]));

        assert_eq!(ids(ix.evaluate(&Filter::Kind(vec![Kind::Resume]))), [1, 2]);
        let eq = |v| field("years", FieldMatch::AnyOf(vec![v]));
        assert_eq!(ids(ix.evaluate(&eq(Value::Int(5)))), [1, 2], "int and float share a domain");
        assert_eq!(
            ids(ix.evaluate(&field("skills", FieldMatch::AnyOf(vec![Value::Str("go".into())])))),
            [3]
        );
        assert_eq!(
            ids(ix.evaluate(&field("remote", FieldMatch::AnyOf(vec![Value::Bool(true)])))),
            [4]
        );
        let r = |lower, upper| field("years", FieldMatch::Range(Range { lower, upper }));
        assert_eq!(ids(ix.evaluate(&r(Some((0.0, true)), None))), [1, 2]);
        assert_eq!(ids(ix.evaluate(&r(None, Some((5.0, false))))), [4]);
        assert_eq!(ids(ix.evaluate(&r(Some((5.0, false)), Some((5.0, false))))), Vec::<u32>::new());
        assert_eq!(ids(ix.evaluate(&r(Some((9.0, true)), Some((1.0, true))))), Vec::<u32>::new());
        assert_eq!(ids(ix.evaluate(&field("years", FieldMatch::Exists))), [1, 2, 4]);
        assert_eq!(ids(ix.evaluate(&field("nope", FieldMatch::Exists))), Vec::<u32>::new());
        let not_resume = Filter::NoneOf(vec![Filter::Kind(vec![Kind::Resume])]);
        assert_eq!(ids(ix.evaluate(&not_resume)), [3, 4]);
        let both = Filter::AllOf(vec![
            Filter::Kind(vec![Kind::Resume]),
            eq(Value::Float(5.0)),
            field(
                "city",
                FieldMatch::AnyOf(vec![Value::Str("Rome".into()), Value::Str("Paris".into())]),
            ),
        ]);
        assert_eq!(ids(ix.evaluate(&both)), [2]);
        assert_eq!(ids(ix.evaluate(&Filter::AnyOf(vec![not_resume, both]))), [2, 3, 4]);

        ix.remove(
            2,
            &doc(
                Kind::Resume,
                &[("city", Value::Str("Rome".into())), ("years", Value::Float(5.0))],
            ),
        );
        assert_eq!(ids(ix.evaluate(&eq(Value::Int(5)))), [1]);
        assert_eq!(ids(ix.live().clone()), [1, 3, 4]);
    }

    #[test]
    fn snapshot_round_trips_and_forget_drops_ids_everywhere() {
        let mut ix = PayloadIndex::default();
        ix.add(
            1,
            &doc(Kind::Resume, &[("city", Value::Str("Oslo".into())), ("years", Value::Int(5))]),
        );
        ix.add(
            2,
            &doc(
                Kind::Jd,
                &[("skills", Value::StrList(vec!["rust".into()])), ("remote", Value::Bool(true))],
            ),
        );
        ix.add(3, &doc(Kind::Jd, &[("years", Value::Float(-0.5))]));
        let bytes = ix.encode(4);
        let (back, covers) = PayloadIndex::decode(&bytes).unwrap();
        assert_eq!(covers, 4);
        let filters = [
            Filter::Kind(vec![Kind::Jd]),
            field("years", FieldMatch::Range(Range { lower: Some((-1.0, true)), upper: None })),
            field("skills", FieldMatch::AnyOf(vec![Value::Str("rust".into())])),
            field("remote", FieldMatch::AnyOf(vec![Value::Bool(true)])),
            field("city", FieldMatch::Exists),
            Filter::NoneOf(vec![Filter::Kind(vec![Kind::Resume])]),
        ];
        for f in &filters {
            assert_eq!(back.evaluate(f), ix.evaluate(f), "{f:?}");
        }
        for cut in 0..bytes.len() {
            assert!(PayloadIndex::decode(&bytes[..cut]).is_err(), "truncated at {cut}");
        }
        let mut back = back;
        back.forget(&[2u32].into_iter().collect());
        assert_eq!(ids(back.evaluate(&Filter::Kind(vec![Kind::Jd]))), [3]);
        assert_eq!(ids(back.evaluate(&field("remote", FieldMatch::Exists))), Vec::<u32>::new());
        assert_eq!(ids(back.live().clone()), [1, 3]);
    }

    /// Random documents and filters: the bitmap must equal a direct evaluation per document.
    fn arb_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            (0..4u8).prop_map(|i| Value::Str(format!("s{i}"))),
            (-3..3i64).prop_map(Value::Int),
            (-3..3i64).prop_map(|i| Value::Float(i as f64 / 2.0)),
            any::<bool>().prop_map(Value::Bool),
            proptest::collection::vec((0..4u8).prop_map(|i| format!("s{i}")), 0..3)
                .prop_map(Value::StrList),
        ]
    }

    fn arb_filter() -> impl Strategy<Value = Filter> {
        let keys = prop_oneof![Just("a".to_string()), Just("b".to_string())];
        let leaf = prop_oneof![
            proptest::collection::vec((0..3usize).prop_map(|i| Kind::ALL[i]), 1..3)
                .prop_map(Filter::Kind),
            (
                keys.clone(),
                proptest::collection::vec(
                    arb_value().prop_filter("scalar", |v| !matches!(v, Value::StrList(_))),
                    1..3
                )
            )
                .prop_map(|(key, vs)| Filter::Field { key, matches: FieldMatch::AnyOf(vs) }),
            (keys.clone(), -4..4i32, any::<bool>(), 0..4i32, any::<bool>()).prop_map(
                |(key, lo, li, w, hi_inc)| Filter::Field {
                    key,
                    matches: FieldMatch::Range(Range {
                        lower: Some((lo as f64 / 2.0, li)),
                        upper: Some(((lo + w) as f64 / 2.0, hi_inc))
                    }),
                }
            ),
            keys.prop_map(|key| Filter::Field { key, matches: FieldMatch::Exists }),
        ];
        leaf.prop_recursive(3, 16, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 1..3).prop_map(Filter::AllOf),
                proptest::collection::vec(inner.clone(), 1..3).prop_map(Filter::AnyOf),
                proptest::collection::vec(inner, 1..3).prop_map(Filter::NoneOf),
            ]
        })
    }

    fn matches(doc: &DocMeta, f: &Filter) -> bool {
        let num = |v: &Value| match v {
            Value::Int(i) => Some(*i as f64),
            Value::Float(x) => Some(*x),
            _ => None,
        };
        match f {
            Filter::Kind(ks) => ks.contains(&doc.kind),
            Filter::Field { key, matches: m } => {
                let Some(v) = doc.payload.get(key) else { return false };
                match m {
                    FieldMatch::Exists => true,
                    FieldMatch::Range(r) => num(v).is_some_and(|x| {
                        r.lower.is_none_or(|(lo, inc)| if inc { x >= lo } else { x > lo })
                            && r.upper.is_none_or(|(hi, inc)| if inc { x <= hi } else { x < hi })
                    }),
                    FieldMatch::AnyOf(vs) => vs.iter().any(|q| match (v, q) {
                        (Value::StrList(l), Value::Str(s)) => l.contains(s),
                        _ => match (num(v), num(q)) {
                            (Some(a), Some(b)) => a == b,
                            _ => v == q,
                        },
                    }),
                }
            }
            Filter::AllOf(fs) => fs.iter().all(|f| matches(doc, f)),
            Filter::AnyOf(fs) => fs.iter().any(|f| matches(doc, f)),
            Filter::NoneOf(fs) => !fs.iter().any(|f| matches(doc, f)),
        }
    }

    proptest! {
        #[test]
        fn bitmap_equals_per_document_evaluation(
            docs in proptest::collection::vec(((0..3usize), proptest::option::of(arb_value()), proptest::option::of(arb_value())), 0..40),
            removed in proptest::collection::vec(any::<bool>(), 40),
            filter in arb_filter(),
        ) {
            let mut ix = PayloadIndex::default();
            let mut live = Vec::new();
            for (i, (k, a, b)) in docs.iter().enumerate() {
                let mut fields = vec![];
                if let Some(a) = a { fields.push(("a", a.clone())); }
                if let Some(b) = b { fields.push(("b", b.clone())); }
                let d = doc(Kind::ALL[*k], &fields);
                ix.add(i as u32, &d);
                if removed[i] { ix.remove(i as u32, &d); } else { live.push((i as u32, d)); }
            }
            let want: Vec<u32> = live.iter().filter(|(_, d)| matches(d, &filter)).map(|(i, _)| *i).collect();
            prop_assert_eq!(ids(ix.evaluate(&filter)), want);
        }
    }
}
