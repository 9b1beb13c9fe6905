//! Applies a layer blob (plain, gzip or zstd tar) read from stdin into an
//! existing empty directory: `apply_layer DEST < layer.tar`. Used by the
//! unpack benchmark to compare with `tar -x`.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;

fn main() {
    let dest = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .expect("usage: apply_layer DEST < layer.tar"),
    );
    let stdin = File::from(io::stdin().as_fd().try_clone_to_owned().expect("dup stdin"));
    let reader = berth_snapshot::decompressed(stdin).expect("sniffing stream");
    match berth_snapshot::apply_layer(reader, &dest) {
        Ok(stats) => println!("{} entries, {} bytes", stats.entries, stats.size),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
