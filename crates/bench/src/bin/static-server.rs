//! `static-server --bind ADDR --file BODY.json`: answers every GET with the file's bytes.
//!
//! The baseline for the cache-hit benchmark: the least an actix-web server can do per request.
#![allow(clippy::expect_used)] // a measurement tool: a bad argument ends it

use actix_web::{App, HttpResponse, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut bind = "127.0.0.1:18081".to_owned();
    let mut file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bind" => bind = args.next().expect("--bind ADDR"),
            "--file" => file = args.next(),
            other => panic!("unknown argument {other}"),
        }
    }
    let body = web::Bytes::from(std::fs::read(file.expect("--file BODY.json"))?);
    println!("static-server on http://{bind} ({} bytes)", body.len());
    HttpServer::new(move || {
        let body = body.clone();
        App::new().default_service(web::to(move || {
            let body = body.clone();
            async move {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(body)
            }
        }))
    })
    .workers(1)
    .bind(bind)?
    .run()
    .await
}
