//! The `aws-front` binary: `aws-front --upstream http://127.0.0.1:5077 [--listen
//! 127.0.0.1:0]` prints `aws-front listening on http://HOST:PORT` as its first line and
//! serves until killed; it is driven through `/__front/counts`, `/__front/faults` and
//! `/__front/reset` (docs/aws-front.md).

use std::io::Write;

fn main() {
    let mut upstream = None;
    let mut listen = "127.0.0.1:0".to_string();
    let mut args = std::env::args().skip(1);
    let usage = "usage: aws-front --upstream http://HOST:PORT [--listen HOST:PORT]";
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--upstream", Some(v)) => upstream = Some(v),
            ("--listen", Some(v)) => listen = v,
            _ => {
                eprintln!("aws-front: unexpected argument {arg:?}; {usage}");
                std::process::exit(2);
            }
        }
    }
    let Some(upstream) = upstream else {
        eprintln!("aws-front: --upstream is required; {usage}");
        std::process::exit(2);
    };
    let front = match aws_front::Front::bind(&listen, &upstream) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("aws-front: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "aws-front listening on {}", front.url());
    let _ = out.flush();
    loop {
        std::thread::park();
    }
}
