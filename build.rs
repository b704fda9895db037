// `cargo test` links the crate against libpython (the extension module does not): give the
// test binaries an rpath to it so they run without LD_LIBRARY_PATH.
fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
}
