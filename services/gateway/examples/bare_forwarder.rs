//! The floor the gateway's HTTP stack sets: an actix-web server that forwards every request to
//! one upstream over a per-worker awc client, and does nothing else (no token check, no rate
//! limits, no header policy, no audit). `make bench-gateway` runs it next to nginx and the
//! gateway, so the table tells what the gateway's own work costs and what the stack costs.
//!
//!     bare_forwarder <port> <upstream base URL>

use actix_web::http::header::{CONNECTION, CONTENT_LENGTH, HOST};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Upstream(String);

async fn forward(
    req: HttpRequest,
    body: web::Bytes,
    upstream: web::Data<Upstream>,
) -> HttpResponse {
    let Some(client) = req.app_data::<awc::Client>() else {
        return HttpResponse::InternalServerError().finish();
    };
    let uri = format!("{}{}", upstream.0, req.uri());
    let mut call = client.request(req.method().clone(), uri);
    for (name, value) in req.headers() {
        if name != HOST && name != CONNECTION {
            call = call.append_header((name.clone(), value.clone()));
        }
    }
    match call.send_body(body).await {
        Ok(mut answer) => {
            let mut res = HttpResponse::build(answer.status());
            for (name, value) in answer.headers() {
                if name != CONTENT_LENGTH && name != CONNECTION {
                    res.append_header((name.clone(), value.clone()));
                }
            }
            match answer.body().await {
                Ok(body) => res.body(body),
                Err(_) => HttpResponse::BadGateway().finish(),
            }
        }
        Err(_) => HttpResponse::BadGateway().finish(),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(port), Some(upstream)) = (args.next(), args.next()) else {
        return Err(std::io::Error::other(
            "usage: bare_forwarder <port> <upstream base URL>",
        ));
    };
    let port: u16 = port.parse().map_err(std::io::Error::other)?;
    let upstream = web::Data::new(Upstream(upstream.trim_end_matches('/').to_owned()));
    HttpServer::new(move || {
        App::new()
            .app_data(upstream.clone())
            .app_data(
                awc::Client::builder()
                    .connector(awc::Connector::new().max_http_version(awc::http::Version::HTTP_11))
                    .disable_redirects()
                    .no_default_headers()
                    .finish(),
            )
            .default_service(web::to(forward))
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
