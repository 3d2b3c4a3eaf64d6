// embed_migrations! reads ../migrations at compile time, but cargo does not know it: without
// this, a migration added to the tree is missing from an incremental build's binaries.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
