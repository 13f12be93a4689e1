//! Compiles the protobuf files with protox (pure Rust), so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/flight_session.proto",
        "proto/pond.proto",
        "proto/storage.proto",
        "proto/cluster.proto",
        "proto/dual.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    prost_build::Config::new()
        // A secret's Debug is written by hand (src/lib.rs): its options never print.
        .skip_debug(["pond.cluster.v1.Secret"])
        .compile_fds(descriptors)?;
    Ok(())
}
