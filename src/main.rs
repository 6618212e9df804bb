fn main() {
    println!("escale");
}
