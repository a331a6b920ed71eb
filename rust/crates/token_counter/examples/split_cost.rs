use std::time::Instant;
use token_counter::Encoding;
fn main() {
    let text = "What is the capital of France?";
    let enc = Encoding::O200kBase;
    let tok = enc.tokenizer();
    let n = 200_000;
    enc.count_ordinary(text);
    let t = Instant::now();
    let mut s = 0;
    for _ in 0..n { s += tok.split(std::hint::black_box(text)).count(); }
    println!("split {:.0} ns ({s})", t.elapsed().as_nanos() as f64 / n as f64);
    let t = Instant::now();
    for _ in 0..n { s += enc.count_ordinary(std::hint::black_box(text)); }
    println!("count {:.0} ns ({s})", t.elapsed().as_nanos() as f64 / n as f64);
}
