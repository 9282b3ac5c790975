//! The shop API, end to end over loopback.

mod common;

use common::Conn;
use nest_demo::{DemoConfig, DemoServer, Mode};

fn shop() -> DemoServer {
    DemoServer::start(DemoConfig { mode: Mode::Shop, ..DemoConfig::default() }).unwrap()
}

fn login(conn: &mut Conn, user: &str) -> (String, String) {
    let body = format!(r#"{{"user": "{user}", "password": "secret"}}"#);
    let reply = conn.send("POST", "/login", &[], Some(&body));
    assert_eq!(reply.status, 200, "{reply:?}");
    let json = reply.json();
    assert_eq!(json["user"], user);
    let token = json["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 32);
    let cookie = reply.header("set-cookie").unwrap().to_owned();
    assert!(cookie.ends_with("; Path=/; HttpOnly"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();
    assert!(session.starts_with("session="));
    (token, session)
}

#[test]
fn login_cart_checkout_flow() {
    let server = shop();
    let mut conn = Conn::open(server.addr());
    let (token, _) = login(&mut conn, "ada");
    let auth = format!("Bearer {token}");
    let auth = [("Authorization", auth.as_str())];

    let price = |conn: &mut Conn, id: u32| {
        let reply = conn.get(&format!("/items/{id}"));
        assert_eq!(reply.status, 200);
        let json = reply.json();
        assert_eq!(json["id"], id);
        assert!(json["stock"].is_u64());
        json["price"].as_f64().unwrap()
    };
    let total = 2.0 * price(&mut conn, 1) + price(&mut conn, 2);

    let reply = conn.send("POST", "/cart", &auth, Some(r#"{"item": 1, "qty": 2}"#));
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["items"], 2);
    let reply = conn.send("POST", "/cart", &auth, Some(r#"{"item": 2}"#));
    assert_eq!(reply.json()["items"], 3);

    let reply = conn.send("POST", "/checkout", &auth, None);
    assert_eq!(reply.status, 200, "{reply:?}");
    let json = reply.json();
    assert!(!json["order"].as_str().unwrap().is_empty());
    assert!((json["total"].as_f64().unwrap() - total).abs() < 0.005);

    // The checkout emptied the cart.
    let reply = conn.send("POST", "/checkout", &auth, None);
    assert_eq!(reply.status, 409);
    assert_eq!(reply.json()["error"], "cart is empty");

    let stats = server.stats();
    assert_eq!(stats.total, conn.sent);
    assert_eq!(stats.total, 7);
    assert_eq!(stats.get("POST /login"), 1);
    assert_eq!(stats.get("GET /items/:id"), 2);
    assert_eq!(stats.get("POST /cart"), 2);
    assert_eq!(stats.get("POST /checkout"), 2);
}

#[test]
fn cart_and_checkout_need_a_valid_token() {
    let server = shop();
    let mut conn = Conn::open(server.addr());
    let body = Some(r#"{"item": 1, "qty": 1}"#);

    let reply = conn.send("POST", "/cart", &[], body);
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    let unknown = [("Authorization", "Bearer 0123456789abcdef0123456789abcdef")];
    assert_eq!(conn.send("POST", "/cart", &unknown, body).status, 401);
    let garbage = [("Authorization", "Bearer nope")];
    assert_eq!(conn.send("POST", "/cart", &garbage, body).status, 401);
    assert_eq!(conn.send("POST", "/checkout", &[], None).status, 401);
    assert_eq!(conn.send("POST", "/checkout", &unknown, None).status, 401);

    // With a token, bad bodies are 400 and unknown items 404.
    let (token, _) = login(&mut conn, "bob");
    let auth = format!("Bearer {token}");
    let auth = [("Authorization", auth.as_str())];
    for bad in ["not json", r#"{"qty": 1}"#, r#"{"item": 1, "qty": 0}"#] {
        let reply = conn.send("POST", "/cart", &auth, Some(bad));
        assert_eq!(reply.status, 400, "{bad}: {reply:?}");
        assert!(reply.json()["error"].is_string());
    }
    let reply = conn.send("POST", "/cart", &auth, Some(r#"{"item": 7}"#));
    assert_eq!(reply.status, 404);
}

#[test]
fn items_and_discontinued_ids() {
    let server = shop();
    let mut conn = Conn::open(server.addr());

    let reply = conn.get("/items");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let items = reply.json();
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 20);
    assert!(items.iter().all(|i| i["id"].as_u64().unwrap() % 10 != 7));
    assert_eq!(conn.get("/items?page=5").json().as_array().unwrap().len(), 10);
    assert_eq!(conn.get("/items?page=6").json().as_array().unwrap().len(), 0);
    assert_eq!(conn.get("/items?page=zero").status, 400);
    let mugs = conn.get("/items?q=MUG").json();
    let mugs = mugs.as_array().unwrap();
    assert!(!mugs.is_empty());
    assert!(mugs.iter().all(|i| i["name"].as_str().unwrap().contains("Mug")));

    assert_eq!(conn.get("/items/42").status, 200);
    for id in ["7", "17", "97"] {
        let reply = conn.get(&format!("/items/{id}"));
        assert_eq!(reply.status, 404, "id {id}");
        assert_eq!(reply.json()["error"], "not found");
    }
    for id in ["0", "101", "abc", "-1", ""] {
        assert_eq!(conn.get(&format!("/items/{id}")).status, 404, "id {id:?}");
    }
}

#[test]
fn session_cookie_identifies_the_user() {
    let server = shop();
    let mut conn = Conn::open(server.addr());
    let (_, session) = login(&mut conn, "carol");

    let reply = conn.send("GET", "/whoami", &[("Cookie", &session)], None);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["user"], "carol");
    let cookies = format!("theme=dark; {session}");
    let reply = conn.send("GET", "/whoami", &[("Cookie", &cookies)], None);
    assert_eq!(reply.json()["user"], "carol");

    assert_eq!(conn.get("/whoami").status, 401);
    let stale = [("Cookie", "session=0123456789abcdef0123456789abcdef")];
    assert_eq!(conn.send("GET", "/whoami", &stale, None).status, 401);
}

#[test]
fn login_rejects_bad_bodies() {
    let server = shop();
    let mut conn = Conn::open(server.addr());
    for bad in ["", "{", r#"{"password": "x"}"#, r#"{"user": ""}"#, r#"{"user": 5}"#] {
        let reply = conn.send("POST", "/login", &[], Some(bad));
        assert_eq!(reply.status, 400, "{bad:?}: {reply:?}");
        assert!(reply.json()["error"].is_string());
    }
    // A body over 1 MiB is refused from its Content-Length alone.
    let mut conn = Conn::open(server.addr());
    conn.write("POST", "/login", &[("Content-Length", "2000000")], None);
    assert_eq!(conn.read().unwrap().status, 413);
}

#[test]
fn misc_endpoints_and_errors() {
    let server = shop();
    let mut conn = Conn::open(server.addr());

    let reply = conn.get("/");
    assert_eq!(reply.status, 200);
    assert!(reply.header("content-type").unwrap().starts_with("text/html"));
    assert!(reply.body.contains("/items"));

    let reply = conn.get("/slow?ms=1");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["slept_ms"], 1);
    assert_eq!(conn.get("/slow?ms=x").status, 400);

    assert_eq!(conn.get("/status/503").status, 503);
    assert_eq!(conn.get("/status/201").json()["status"], 201);
    let reply = conn.get("/status/204");
    assert_eq!((reply.status, reply.body.as_str()), (204, ""));
    assert_eq!(conn.get("/status/99").status, 400);
    assert_eq!(conn.get("/status/teapot").status, 400);

    let reply = conn.get("/redirect");
    assert_eq!(reply.status, 302);
    assert_eq!(reply.header("location"), Some("/items"));

    assert_eq!(conn.get("/nope").status, 404);
    let reply = conn.send("DELETE", "/items", &[], None);
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET"));
    assert_eq!(conn.get("/login").status, 405);

    let stats = server.stats();
    assert_eq!(stats.total, conn.sent);
    assert_eq!(stats.total, 12);
    assert_eq!(stats.get("GET /"), 1);
    assert_eq!(stats.get("GET /slow"), 2);
    assert_eq!(stats.get("GET /status/:code"), 5);
    assert_eq!(stats.get("GET /redirect"), 1);
    assert_eq!(stats.get("(not found)"), 1);
    assert_eq!(stats.get("(method not allowed)"), 2);
}
