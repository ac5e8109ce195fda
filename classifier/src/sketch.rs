//! Fixed-size probabilistic structures.
//!
//! Per-sender state must stay small (≤512 bytes) however many recipients a
//! sender reaches, and the "who ever messaged whom" graph must not grow with
//! traffic. So distinct recipients are counted with a HyperLogLog of 256 4-bit
//! registers (128 bytes, ~6.5 % standard error, exact-ish below a few hundred
//! via linear counting), and contacts live in a two-generation blocked Bloom
//! filter whose older generation is dropped when the newer one fills, which
//! bounds both memory and the false-positive rate.

/// A fast, platform-independent 64-bit string hash (multiply-xorshift over
/// 8-byte chunks, then a murmur3 finalizer). Deterministic across runs, so
/// replays are reproducible, unlike `std`'s randomly seeded hasher.
pub fn hash_str(s: &str) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let b = s.as_bytes();
    let mut h: u64 = 0x2545_F491_4F6C_DD1D ^ (b.len() as u64).wrapping_mul(K);
    let mut chunks = b.chunks_exact(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K);
        h ^= h >> 29;
    }
    let rem = chunks.remainder();
    if !rem.is_empty() {
        let mut w = [0u8; 8];
        w[..rem.len()].copy_from_slice(rem);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K);
        h ^= h >> 29;
    }
    fmix64(h)
}

/// murmur3's 64-bit finalizer: spreads every input bit over the output.
pub fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// Hash of the directed pair `from -> to` (order matters).
pub fn pair_hash(from: u64, to: u64) -> u64 {
    fmix64(from ^ to.rotate_left(29).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

const HLL_REGISTERS: usize = 256;

/// HyperLogLog distinct counter: 256 registers of 4 bits in 128 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct DistinctCounter {
    regs: [u8; HLL_REGISTERS / 2],
}

impl Default for DistinctCounter {
    fn default() -> Self {
        DistinctCounter {
            regs: [0; HLL_REGISTERS / 2],
        }
    }
}

impl std::fmt::Debug for DistinctCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DistinctCounter(~{:.0})", self.estimate())
    }
}

impl DistinctCounter {
    fn get(&self, i: usize) -> u8 {
        let byte = self.regs[i / 2];
        if i & 1 == 0 { byte & 0x0f } else { byte >> 4 }
    }

    fn set(&mut self, i: usize, v: u8) {
        let byte = &mut self.regs[i / 2];
        *byte = if i & 1 == 0 {
            (*byte & 0xf0) | v
        } else {
            (*byte & 0x0f) | (v << 4)
        };
    }

    /// Adds an item by its 64-bit hash; returns whether a register grew
    /// (a strong hint, not a proof, that the item is new).
    pub fn insert(&mut self, hash: u64) -> bool {
        let idx = (hash >> 56) as usize;
        let rest = hash << 8;
        let rank = (rest.leading_zeros() + 1).min(15) as u8;
        if rank > self.get(idx) {
            self.set(idx, rank);
            true
        } else {
            false
        }
    }

    /// Estimated number of distinct items inserted.
    pub fn estimate(&self) -> f32 {
        let m = HLL_REGISTERS as f32;
        let mut sum = 0.0f32;
        let mut zeros = 0u32;
        for i in 0..HLL_REGISTERS {
            let r = self.get(i);
            if r == 0 {
                zeros += 1;
            }
            sum += 1.0 / (1u32 << r) as f32;
        }
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let raw = alpha * m * m / sum;
        if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f32).ln()
        } else {
            raw
        }
    }
}

/// Bounded "did A ever message B" memory over all traffic.
///
/// A blocked Bloom filter (one 64-bit word per lookup, so one cache miss) in
/// two generations: inserts go to the current one; when it holds `capacity`
/// items it becomes the previous one and a cleared table takes its place.
/// "Ever" therefore means "within roughly the last one to two generations",
/// which is the memory an operator can afford and keeps false positives near
/// the design rate.
pub struct ContactGraph {
    current: Vec<u64>,
    previous: Vec<u64>,
    shift: u32,
    inserted: usize,
    capacity: usize,
}

impl std::fmt::Debug for ContactGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContactGraph")
            .field("words", &self.current.len())
            .field("inserted", &self.inserted)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl ContactGraph {
    /// A graph of `2^log2_words` 64-bit words per generation; a generation is
    /// rotated after `words * 64 / 16` inserts (16 bits per pair, ~0.5 % FP).
    pub fn new(log2_words: u32) -> Self {
        let log2_words = log2_words.clamp(4, 30);
        let words = 1usize << log2_words;
        ContactGraph {
            current: vec![0; words],
            previous: vec![0; words],
            shift: 64 - log2_words,
            inserted: 0,
            capacity: words * 4,
        }
    }

    fn locate(&self, h: u64) -> (usize, u64) {
        let idx = (h >> self.shift) as usize;
        let mask = (1u64 << (h & 63))
            | (1u64 << ((h >> 6) & 63))
            | (1u64 << ((h >> 12) & 63))
            | (1u64 << ((h >> 18) & 63));
        (idx, mask)
    }

    /// Whether the pair hash was (probably) inserted.
    pub fn contains(&self, pair: u64) -> bool {
        let (i, mask) = self.locate(pair);
        self.current.get(i).is_some_and(|w| w & mask == mask)
            || self.previous.get(i).is_some_and(|w| w & mask == mask)
    }

    /// Records the pair; returns whether it was new.
    pub fn insert(&mut self, pair: u64) -> bool {
        if self.contains(pair) {
            return false;
        }
        if self.inserted >= self.capacity {
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.iter_mut().for_each(|w| *w = 0);
            self.inserted = 0;
        }
        let (i, mask) = self.locate(pair);
        if let Some(w) = self.current.get_mut(i) {
            *w |= mask;
        }
        self.inserted += 1;
        true
    }

    /// Heap bytes owned (both generations).
    pub fn heap_bytes(&self) -> usize {
        (self.current.capacity() + self.previous.capacity()) * 8
    }
}

/// Who of a number block last wrote to a recipient, and when: a
/// direct-mapped table of the last minutes' messages, fixed in size, that
/// answers "did another number of this sender's block write to this
/// recipient a moment ago?" (see [`RecentBlockContacts::record`]).
///
/// A slot holds 32 bits of the (block, recipient) key, 32 bits of the
/// sender and the second it wrote; a newer message whose key lands on the
/// slot takes it. So under load the table forgets early (at 2^20 slots and
/// 20 000 messages a second, after about a minute), and forgetting only
/// ever loses a match: two keys or two senders are taken for one with odds
/// of 2^-32.
#[derive(Clone)]
pub struct RecentBlockContacts {
    slots: Vec<BlockContact>,
    shift: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct BlockContact {
    key: u32,
    sender: u32,
    at_s: u32,
}

impl std::fmt::Debug for RecentBlockContacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentBlockContacts")
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl RecentBlockContacts {
    /// A table of `2^log2_slots` slots (12 bytes each).
    pub fn new(log2_slots: u32) -> Self {
        let log2_slots = log2_slots.clamp(4, 28);
        RecentBlockContacts {
            slots: vec![BlockContact::default(); 1 << log2_slots],
            shift: 64 - log2_slots,
        }
    }

    /// Records that `sender` of number block `block` wrote to `recipient`
    /// at `at_ms`, and returns whether a *different* number of the block
    /// wrote to the same recipient at most `window_s` seconds before.
    pub fn record(
        &mut self,
        block: u64,
        recipient: u64,
        sender: u64,
        at_ms: i64,
        window_s: u32,
    ) -> bool {
        let h = pair_hash(fmix64(block), recipient);
        let key = h as u32;
        let sender = sender as u32;
        let at_s = u32::try_from(at_ms.max(0) / 1000).unwrap_or(u32::MAX);
        let Some(slot) = self.slots.get_mut((h >> self.shift) as usize) else {
            return false;
        };
        let other_just_now = slot.key == key
            && slot.sender != sender
            && slot.at_s <= at_s
            && at_s - slot.at_s <= window_s;
        *slot = BlockContact { key, sender, at_s };
        other_just_now
    }

    /// Heap bytes owned.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<BlockContact>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hll_is_close_on_small_and_large_sets() {
        for n in [1usize, 10, 100, 1000, 20_000] {
            let mut c = DistinctCounter::default();
            for i in 0..n {
                c.insert(hash_str(&format!("+1415555{i:04}")));
                c.insert(hash_str(&format!("+1415555{i:04}")));
            }
            let est = c.estimate();
            let err = (est - n as f32).abs() / n as f32;
            assert!(err < 0.2, "n={n} est={est}");
        }
    }

    #[test]
    fn contact_graph_is_directed_and_bounded() {
        let mut g = ContactGraph::new(10);
        let (a, b) = (hash_str("+1"), hash_str("+2"));
        assert!(g.insert(pair_hash(a, b)));
        assert!(!g.insert(pair_hash(a, b)));
        assert!(g.contains(pair_hash(a, b)));
        assert!(!g.contains(pair_hash(b, a)));
        let bytes = g.heap_bytes();
        for i in 0..100_000u64 {
            g.insert(fmix64(i));
        }
        assert_eq!(g.heap_bytes(), bytes, "memory must not grow");
        // false-positive rate stays near the design rate after many rotations
        let fp = (1_000_000..1_010_000u64)
            .filter(|i| g.contains(fmix64(*i)))
            .count();
        assert!(fp < 300, "fp={fp}");
    }

    #[test]
    fn a_block_neighbour_writing_to_the_same_recipient_just_before_is_seen() {
        let mut t = RecentBlockContacts::new(10);
        let (block, r) = (141_555_501, hash_str("+14155559999"));
        let (a, b) = (hash_str("+14155550101"), hash_str("+14155550102"));
        assert!(!t.record(block, r, a, 1_000_000, 300));
        // the same number again is no other number
        assert!(!t.record(block, r, a, 1_030_000, 300));
        // another number of the block a minute later
        assert!(t.record(block, r, b, 1_090_000, 300));
        // another block, or too long after, is not
        assert!(!t.record(block + 1, r, a, 1_091_000, 300));
        assert!(!t.record(block, r, a, 1_500_000, 300));
        assert_eq!(t.heap_bytes(), 1024 * 12, "fixed size");
    }
}
