//! Which of a set of lowercase literals occur in a message with ASCII case
//! ignored — without lowercasing (copying) the message, and in one vector
//! pass that most messages leave without a single candidate.
//!
//! Each literal has a *fingerprint*: `F` consecutive bytes of it (the
//! rarest, by a cost the caller gives; `F` is 3, or the shortest literal's
//! length), case-folded by setting bit 5 (`x | 0x20`: `A` and `a` fold
//! alike; so do a few non-letters, which only makes a candidate more
//! likely, never misses one). Literals are spread over 8 buckets; per
//! fingerprint position and bucket, two 16-entry nibble tables say which
//! folded bytes a fingerprint of the bucket may have there (Teddy's
//! idea). The scan folds 32 message bytes at a time, looks both nibbles of
//! each up (`vpshufb`) and ANDs the positions: a set bit is a position
//! where some fingerprint of that bucket may start. Only there are the
//! bucket's literals compared, `eq_ignore_ascii_case`, at their
//! fingerprint's offset.
//!
//! Whenever a literal `l` occurs (`hay[s..s + l.len()]` ASCII-lowercased is
//! `l`), each of its fingerprint bytes folds to the folded literal byte, so
//! its bucket's bit is set at `s + offset` and the comparison finds it: the
//! scan reports exactly the literals that occur. Without AVX2 the same
//! tables, expanded to 256 entries, are applied byte by byte.

/// Fingerprint length at most.
pub const FP_MAX: usize = 3;

/// Buckets (bits of a table entry).
const BUCKETS: usize = 8;

/// Bytes the vector scan looks at per step.
const STEP: usize = 32;

#[derive(Debug)]
struct Lit {
    /// Lowercase (as the caller gave it).
    bytes: Vec<u8>,
    /// Where its fingerprint starts.
    offset: usize,
    /// Its fingerprint, folded, as [`gram_at`] reads one.
    gram: u32,
}

/// A scanner for one set of literals.
#[derive(Debug)]
pub struct Scanner {
    lits: Vec<Lit>,
    /// Fingerprint length, `1..=FP_MAX`.
    fp: usize,
    /// Per fingerprint position: low-nibble and high-nibble table of the
    /// folded byte -> bucket bits, each 16 entries twice (one per 128-bit
    /// lane of a `vpshufb`).
    lo: [[u8; 32]; FP_MAX],
    hi: [[u8; 32]; FP_MAX],
    /// The same per byte (fold included), for the scalar path.
    bytes: [[u8; 256]; FP_MAX],
    /// Bucket -> its literals' (folded fingerprint, index).
    buckets: [Vec<(u32, usize)>; BUCKETS],
    /// The bytes of a folded fingerprint in a `u32`.
    gram_mask: u32,
    /// AVX2 is there (checked once).
    avx2: bool,
}

/// `b` as the scan compares it.
fn fold(b: u8) -> u8 {
    b | 0x20
}

/// The `fp` bytes of `s` at `at`, folded, in one word (0 past `s`).
fn gram_at(s: &[u8], at: usize, fp: usize) -> u32 {
    let mut g = 0;
    for k in 0..fp {
        g |= u32::from(s.get(at + k).map_or(0, |&b| fold(b))) << (8 * k);
    }
    g
}

/// The set bits of `m`.
fn bits(mut m: u16) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let i = m.trailing_zeros() as usize;
        m &= m.wrapping_sub(1);
        (i < 16).then_some(i)
    })
}

impl Scanner {
    /// A scanner for `lits` (non-empty, lowercase: an ASCII uppercase
    /// letter in a literal would never be found). `cost(gram)` ranks the
    /// fingerprint candidates of a literal (lower: rarer in messages), and
    /// `chance(folded byte)` estimates how often a folded byte occurs, to
    /// spread the fingerprints over the buckets. `None` when `lits` is
    /// empty or holds an empty literal.
    pub fn new(
        lits: &[&[u8]],
        cost: impl Fn(&[u8]) -> f64,
        chance: impl Fn(u8) -> f64,
    ) -> Option<Scanner> {
        let fp = lits.iter().map(|l| l.len()).min()?.min(FP_MAX);
        if fp == 0 {
            return None;
        }
        let lits: Vec<Lit> = lits
            .iter()
            .map(|l| {
                let offset = (0..=l.len() - fp)
                    .map(|a| (cost(&l[a..a + fp]), a))
                    .min_by(|x, y| x.0.total_cmp(&y.0))
                    .map_or(0, |(_, a)| a);
                Lit {
                    bytes: l.to_vec(),
                    offset,
                    gram: gram_at(l, offset, fp),
                }
            })
            .collect();
        let gram = |l: &Lit| -> Vec<u8> {
            l.bytes[l.offset..l.offset + fp]
                .iter()
                .map(|&b| fold(b))
                .collect()
        };
        // A bucket's nibble sets per position, and how likely a message
        // position passes them (the product over positions of the chance
        // of a byte in the sets' cross product).
        type Sets = [(u16, u16); FP_MAX];
        let mut chances = [0.0; 256];
        for (b, c) in chances.iter_mut().enumerate() {
            *c = chance(b as u8);
        }
        let pass = |s: &Sets| -> f64 {
            s[..fp]
                .iter()
                .map(|&(lo, hi)| {
                    let mut p = 0.0;
                    for h in bits(hi) {
                        for l in bits(lo) {
                            p += chances[h << 4 | l];
                        }
                    }
                    p
                })
                .product()
        };
        let with = |s: &Sets, g: &[u8]| -> Sets {
            let mut s = *s;
            for (k, &b) in g.iter().enumerate() {
                s[k].0 |= 1 << (b & 15);
                s[k].1 |= 1 << (b >> 4);
            }
            s
        };
        // Greedy: the likeliest fingerprints first, each into the bucket
        // it makes likelier by the least (an empty bucket: by its own).
        let grams: Vec<Vec<u8>> = lits.iter().map(gram).collect();
        let alone: Vec<f64> = grams
            .iter()
            .map(|g| pass(&with(&[(0, 0); FP_MAX], g)))
            .collect();
        let mut order: Vec<usize> = (0..lits.len()).collect();
        order.sort_by(|&a, &b| alone[b].total_cmp(&alone[a]));
        let mut sets: [Sets; BUCKETS] = [[(0, 0); FP_MAX]; BUCKETS];
        // Each bucket's `pass` (0 while empty).
        let mut passes = [0.0; BUCKETS];
        let mut buckets: [Vec<(u32, usize)>; BUCKETS] = Default::default();
        for i in order {
            let g = &grams[i];
            let mut best = (f64::INFINITY, 0, 0.0);
            for b in 0..BUCKETS {
                let after = pass(&with(&sets[b], g));
                if after - passes[b] < best.0 {
                    best = (after - passes[b], b, after);
                }
            }
            let (_, b, after) = best;
            sets[b] = with(&sets[b], g);
            passes[b] = after;
            buckets[b].push((lits[i].gram, i));
        }
        // By nibble of the folded byte. Positions past `fp` accept all.
        let mut lo16 = [[0u8; 16]; FP_MAX];
        let mut hi16 = [[0u8; 16]; FP_MAX];
        for k in fp..FP_MAX {
            lo16[k] = [0xff; 16];
            hi16[k] = [0xff; 16];
        }
        for (b, s) in sets.iter().enumerate() {
            for k in 0..fp {
                for n in bits(s[k].0) {
                    lo16[k][n] |= 1 << b;
                }
                for n in bits(s[k].1) {
                    hi16[k][n] |= 1 << b;
                }
            }
        }
        // The vector tables take the nibbles of the byte as it is: the low
        // nibble is the folded one, the high one lacks bit 1 (0x20 >> 4)
        // the fold sets.
        let mut lo = [[0u8; 32]; FP_MAX];
        let mut hi = [[0u8; 32]; FP_MAX];
        let mut bytes = [[0u8; 256]; FP_MAX];
        for k in 0..FP_MAX {
            for n in 0..16 {
                lo[k][n] = lo16[k][n];
                lo[k][n + 16] = lo16[k][n];
                hi[k][n] = hi16[k][n | 2];
                hi[k][n + 16] = hi16[k][n | 2];
            }
            for x in 0..=255u8 {
                let f = fold(x);
                bytes[k][usize::from(x)] =
                    lo16[k][usize::from(f & 15)] & hi16[k][usize::from(f >> 4)];
            }
        }
        Some(Scanner {
            lits,
            fp,
            lo,
            hi,
            bytes,
            buckets,
            gram_mask: u32::MAX >> (8 * (4 - fp)),
            avx2: avx2_available(),
        })
    }

    /// Call `found(i)` for each literal `i` (in the order given to
    /// [`Scanner::new`]) that occurs in `hay`, ASCII case ignored: at least
    /// once for each, possibly more often.
    pub fn scan(&self, hay: &[u8], found: &mut impl FnMut(usize)) {
        if hay.len() < self.fp {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: AVX2 was detected at run time (`avx2_available`).
            unsafe {
                match self.fp {
                    1 => avx2::scan::<1>(self, hay, found),
                    2 => avx2::scan::<2>(self, hay, found),
                    _ => avx2::scan::<3>(self, hay, found),
                }
            }
            return;
        }
        self.scan_scalar(hay, found);
    }

    /// [`Scanner::scan`] byte by byte.
    fn scan_scalar(&self, hay: &[u8], found: &mut impl FnMut(usize)) {
        let fp = self.fp;
        if hay.len() < fp {
            return;
        }
        for pos in 0..=hay.len() - fp {
            let mut bits = 0xff;
            for (k, &b) in hay[pos..pos + fp].iter().enumerate() {
                bits &= self.bytes[k][usize::from(b)];
            }
            if bits != 0 {
                self.verify(hay, pos, bits, found);
            }
        }
    }

    /// Compare the literals of the buckets in `bits` whose fingerprint
    /// would start at `pos` (a fingerprint position: `pos + fp <=
    /// hay.len()`): first the fingerprint itself, then the whole literal.
    #[inline]
    fn verify(&self, hay: &[u8], pos: usize, mut bits: u8, found: &mut impl FnMut(usize)) {
        let gram = match hay.get(pos..pos + 4) {
            Some(&[a, b, c, d]) => {
                (u32::from_le_bytes([a, b, c, d]) | 0x2020_2020) & self.gram_mask
            }
            _ => gram_at(hay, pos, self.fp),
        };
        while bits != 0 {
            let b = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            for &(g, i) in &self.buckets[b] {
                if g == gram {
                    self.confirm(hay, pos, i, found);
                }
            }
        }
    }

    /// Does literal `i`, its fingerprint at `pos`, occur there?
    #[inline(never)]
    fn confirm(&self, hay: &[u8], pos: usize, i: usize, found: &mut impl FnMut(usize)) {
        let lit = &self.lits[i];
        let Some(start) = pos.checked_sub(lit.offset) else {
            return;
        };
        let window = hay.get(start..start + lit.bytes.len());
        if window.is_some_and(|w| w.eq_ignore_ascii_case(&lit.bytes)) {
            found(i);
        }
    }

    /// Positions `base + i` for the set bits `i` of `mask`, with their
    /// bucket bits `res[i]`.
    #[cfg(target_arch = "x86_64")]
    fn verify_mask(
        &self,
        hay: &[u8],
        base: usize,
        mut mask: u32,
        res: &[u8; STEP],
        found: &mut impl FnMut(usize),
    ) {
        while mask != 0 {
            let i = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            self.verify(hay, base + i, res[i], found);
        }
    }
}

fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm256_and_si256, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8,
        _mm256_set1_epi8, _mm256_setzero_si256, _mm256_shuffle_epi8, _mm256_srli_epi16,
        _mm256_storeu_si256,
    };

    use super::{Scanner, FP_MAX, STEP};

    /// The tables in registers.
    struct Tables {
        lo: [__m256i; FP_MAX],
        hi: [__m256i; FP_MAX],
    }

    #[target_feature(enable = "avx2")]
    fn load(t: &[u8; 32]) -> __m256i {
        // SAFETY: `t` is 32 readable bytes; the load is unaligned.
        unsafe { _mm256_loadu_si256(t.as_ptr().cast()) }
    }

    /// The 32 bytes of `w` at `k`.
    #[target_feature(enable = "avx2")]
    fn load_at(w: &[u8], k: usize) -> __m256i {
        let w = &w[k..k + STEP];
        // SAFETY: `w` is 32 readable bytes; the load is unaligned.
        unsafe { _mm256_loadu_si256(w.as_ptr().cast()) }
    }

    /// Bucket bits of the 32 bytes `v` as fingerprint byte of one position
    /// (the tables fold: see [`Scanner::new`]).
    #[target_feature(enable = "avx2")]
    fn classify(v: __m256i, lo: __m256i, hi: __m256i) -> __m256i {
        let nib = _mm256_set1_epi8(0x0f);
        let l = _mm256_and_si256(v, nib);
        let h = _mm256_and_si256(_mm256_srli_epi16::<4>(v), nib);
        _mm256_and_si256(_mm256_shuffle_epi8(lo, l), _mm256_shuffle_epi8(hi, h))
    }

    /// Bucket bits of the 32 fingerprint positions starting at `w[0]`
    /// (`w` holds at least `STEP + F - 1` bytes), and the mask of the
    /// positions with any.
    #[target_feature(enable = "avx2")]
    fn chunk<const F: usize>(t: &Tables, w: &[u8], res: &mut [u8; STEP]) -> u32 {
        let w = &w[..STEP + F - 1];
        let mut r = classify(load_at(w, 0), t.lo[0], t.hi[0]);
        if F > 1 {
            r = _mm256_and_si256(r, classify(load_at(w, 1), t.lo[1], t.hi[1]));
        }
        if F > 2 {
            r = _mm256_and_si256(r, classify(load_at(w, 2), t.lo[2], t.hi[2]));
        }
        let none = _mm256_movemask_epi8(_mm256_cmpeq_epi8(r, _mm256_setzero_si256())) as u32;
        let mask = !none;
        if mask != 0 {
            // SAFETY: `res` is 32 writable bytes; the store is unaligned.
            unsafe { _mm256_storeu_si256(res.as_mut_ptr().cast(), r) };
        }
        mask
    }

    /// The tables in registers.
    #[target_feature(enable = "avx2")]
    fn tables(s: &Scanner) -> Tables {
        Tables {
            lo: [load(&s.lo[0]), load(&s.lo[1]), load(&s.lo[2])],
            hi: [load(&s.hi[0]), load(&s.hi[1]), load(&s.hi[2])],
        }
    }

    /// From `p` on, in whole steps: the first step with candidates (its
    /// start and mask, its bucket bits in `res`), or where the whole steps
    /// end and 0. No calls in the loop, so the tables stay in registers.
    #[target_feature(enable = "avx2")]
    #[inline(never)]
    fn next<const F: usize>(
        s: &Scanner,
        hay: &[u8],
        mut p: usize,
        res: &mut [u8; STEP],
    ) -> (usize, u32) {
        let t = tables(s);
        while p + STEP + F - 1 <= hay.len() {
            let mask = chunk::<F>(&t, &hay[p..], res);
            if mask != 0 {
                return (p, mask);
            }
            p += STEP;
        }
        (p, 0)
    }

    /// [`Scanner::scan`] with AVX2, for fingerprints of `F` bytes
    /// (`hay.len() >= F`).
    #[target_feature(enable = "avx2")]
    pub(super) fn scan<const F: usize>(s: &Scanner, hay: &[u8], found: &mut impl FnMut(usize)) {
        let span = STEP + F - 1;
        let n = hay.len();
        let mut res = [0u8; STEP];
        let mut p = 0;
        loop {
            let (at, mask) = next::<F>(s, hay, p, &mut res);
            if mask == 0 {
                p = at;
                break;
            }
            s.verify_mask(hay, at, mask, &res, found);
            p = at + STEP;
        }
        // Fingerprint positions left: `p..=n - F` (fewer than 32).
        let last = n - F;
        if p > last {
            return;
        }
        let t = tables(s);
        if n >= span {
            // One more step ending at the end, without the positions
            // before `p` (done): `0 < p - q <= 31`.
            let q = n - span;
            let mask = chunk::<F>(&t, &hay[q..], &mut res) & (u32::MAX << (p - q));
            if mask != 0 {
                s.verify_mask(hay, q, mask, &res, found);
            }
        } else {
            // Shorter than one step: from a padded copy, positions past
            // `last` dropped (`last < 31`).
            let mut buf = [0u8; 2 * STEP];
            buf[..n].copy_from_slice(hay);
            let mask = chunk::<F>(&t, &buf, &mut res) & ((1u32 << (last + 1)) - 1);
            if mask != 0 {
                s.verify_mask(hay, 0, mask, &res, found);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(_: &[u8]) -> f64 {
        1.0
    }

    fn chance(b: u8) -> f64 {
        if b.is_ascii_lowercase() {
            0.03
        } else {
            0.001
        }
    }

    /// Which literals occur, the plain way.
    fn naive(lits: &[&[u8]], hay: &[u8]) -> Vec<usize> {
        let low = hay.to_ascii_lowercase();
        (0..lits.len())
            .filter(|&i| memchr::memmem::find(&low, lits[i]).is_some())
            .collect()
    }

    fn run(s: &Scanner, hay: &[u8], scalar: bool) -> Vec<usize> {
        let mut got = vec![false; s.lits.len()];
        let mut f = |i: usize| got[i] = true;
        if scalar {
            s.scan_scalar(hay, &mut f);
        } else {
            s.scan(hay, &mut f);
        }
        (0..got.len()).filter(|&i| got[i]).collect()
    }

    /// A small deterministic generator (xorshift).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Every literal found is there and every literal there is found, at
    /// every length around the 32-byte steps, at either end, in any case,
    /// split across steps, for fingerprints of 1, 2 and 3 bytes — by the
    /// vector scan and the scalar one.
    #[test]
    fn finds_exactly_the_literals_that_occur() {
        let sets: &[&[&[u8]]] = &[
            &[
                b"segfault",
                b"oom-k",
                b"1.1\" 5",
                b"oops:",
                b"heartbeat",
                b"d by:",
            ],
            &[b"ab", b"abc", b"bcd", b"x", b"zz"],
            &[b"q"],
            &[b"kill", "\u{212A}ill".as_bytes(), b"@[`{", b"\x01\x1a"],
            &[
                b"alpha",
                b"bravo",
                b"charlie",
                b"delta",
                b"echo",
                b"foxtrot",
                b"golf",
                b"hotel",
                b"india",
                b"juliet",
                b"kilo",
                b"lima",
                b"mike",
                b"november",
                b"oscar",
                b"papa",
                b"quebec",
                b"romeo",
                b"sierra",
                b"tango",
            ],
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ :-\"1.5@[`{\x01\x1a\x7f\xe2\x84\xaa";
        for lits in sets {
            let s = Scanner::new(lits, flat, chance).unwrap();
            for len in (0..70).chain([95, 96, 97, 127, 128, 129, 200]) {
                for round in 0..40 {
                    let mut hay: Vec<u8> = (0..len)
                        .map(|_| alphabet[rng.below(alphabet.len())])
                        .collect();
                    // Plant a literal (in some case) at a random place.
                    if round % 2 == 0 && len > 0 {
                        let lit = lits[rng.below(lits.len())];
                        if lit.len() <= len {
                            let at = rng.below(len - lit.len() + 1);
                            for (j, &b) in lit.iter().enumerate() {
                                hay[at + j] = if rng.below(2) == 0 {
                                    b.to_ascii_uppercase()
                                } else {
                                    b
                                };
                            }
                        }
                    }
                    let want = naive(lits, &hay);
                    assert_eq!(run(&s, &hay, false), want, "{lits:?} in {hay:?}");
                    assert_eq!(run(&s, &hay, true), want, "{lits:?} in {hay:?} (scalar)");
                }
            }
            // Each literal alone, at the very start and the very end.
            for (i, lit) in lits.iter().enumerate() {
                for pad in [0, 1, 30, 31, 32, 33, 64] {
                    let mut hay = vec![b'#'; pad];
                    hay.extend_from_slice(&lit.to_ascii_uppercase());
                    assert!(
                        run(&s, &hay, false).contains(&i),
                        "{lit:?} at the end of {hay:?}"
                    );
                    let mut hay = lit.to_vec();
                    hay.extend(std::iter::repeat_n(b'#', pad));
                    assert!(
                        run(&s, &hay, false).contains(&i),
                        "{lit:?} at the start of {hay:?}"
                    );
                }
            }
        }
        assert!(Scanner::new(&[], flat, chance).is_none());
        assert!(Scanner::new(&[b"a", b""], flat, chance).is_none());
    }
}
