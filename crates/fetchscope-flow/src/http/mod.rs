//! The HTTP/1.1 client: request bytes out, response head and decoded body in (sans-IO).
