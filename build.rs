//! Compiles the public gRPC API (proto/hirevec/v1) and writes the file descriptor set that the
//! reflection service serves, so grpcurl and other clients need no .proto files.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/hirevec/v1/common.proto",
        "proto/hirevec/v1/collections.proto",
        "proto/hirevec/v1/documents.proto",
        "proto/hirevec/v1/search.proto",
        "proto/hirevec/v1/models.proto",
    ];
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("hirevec_descriptor.bin"))
        .compile_protos(&protos, &["proto"])?;
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    // Several checkouts (git worktrees) may share one target directory, where the generated code
    // lives at a path that does not depend on the checkout; re-run when the building checkout
    // changes so one checkout never compiles another's protos.
    println!("cargo:rerun-if-env-changed=PWD");
    Ok(())
}
