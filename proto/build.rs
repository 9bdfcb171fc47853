//! Generates the protobuf types from `aurum/telemetry/v1/telemetry.proto` (needs `protoc`).
fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-changed=aurum/telemetry/v1/telemetry.proto");
    prost_build::compile_protos(&["aurum/telemetry/v1/telemetry.proto"], &["."])
}
