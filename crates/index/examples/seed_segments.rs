//! Writes a few small, valid segment files (f32 and f16, with deletions and upper layers) into
//! the directory given as the first argument: the seed corpus of the `segment_parse` fuzzer.
//! Each file is prefixed with the fuzzer's mode byte (0 and 1).

use hirevec_index::{Dtype, GrowingSegment, Segment, SegmentConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: seed_segments DIR")?;
    std::fs::create_dir_all(&dir)?;
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    for (i, (dtype, n, dim, m)) in
        [(Dtype::F32, 40, 4, 2), (Dtype::F16, 60, 6, 3), (Dtype::F16, 12, 3, 2)]
            .into_iter()
            .enumerate()
    {
        let mut c = SegmentConfig::new(dim);
        c.dtype = dtype;
        c.stored_dim = dim - 1;
        c.hnsw.m = m;
        let seg = GrowingSegment::new(c, n)?;
        for id in 0..n as u32 {
            let v: Vec<f32> = (0..dim).map(|_| next()).collect();
            seg.insert(id * 3, &v)?;
        }
        seg.delete(3);
        let (cur, _) = seg.write_to(std::io::Cursor::new(Vec::new()))?;
        let bytes = cur.into_inner();
        for mode in [0u8, 1] {
            let mut out = vec![mode];
            out.extend_from_slice(&bytes);
            std::fs::write(format!("{dir}/seed-{i}-{mode}.bin"), out)?;
        }
        println!("seed {i}: {} nodes, {} bytes", seg.len(), bytes.len());
    }
    Ok(())
}
