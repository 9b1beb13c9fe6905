fn main() {
    std::process::exit(berth_shim::main())
}
