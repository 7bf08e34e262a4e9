//! Which operation a request names (sans-IO: a method and a path in, a
//! [`Route`] out).

/// An operation of the HTTP front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST /f/{name}`: run the function with the body as input.
    Invoke(String),
    /// `PUT /f/{name}`: register the body (a module or component).
    Register(String),
    /// `DELETE /f/{name}`.
    Remove(String),
    /// `GET /f/{name}`: the function's options.
    Describe(String),
    /// `GET /f`.
    List,
    /// `GET /healthz`: the process is alive.
    Health,
    /// `GET /readyz`: it takes calls (not while draining).
    Ready,
    /// `GET /metrics`: Prometheus text format.
    Metrics,
    /// A known path with a method it does not take; `allow` lists those it
    /// takes.
    MethodNotAllowed {
        allow: &'static str,
    },
    NotFound,
}

/// The route of `method` on `path` (its query already split off).
pub fn route(method: &str, path: &str) -> Route {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let fixed = |allowed: &'static str, ok: Route| {
        if method == "GET" || method == "HEAD" {
            ok
        } else {
            Route::MethodNotAllowed { allow: allowed }
        }
    };
    match path {
        "/healthz" => fixed("GET, HEAD", Route::Health),
        "/readyz" => fixed("GET, HEAD", Route::Ready),
        "/metrics" => fixed("GET, HEAD", Route::Metrics),
        "/f" => fixed("GET, HEAD", Route::List),
        _ => match path.strip_prefix("/f/") {
            // One segment: a name never holds a slash.
            Some(name) if !name.is_empty() && !name.contains('/') => {
                let name = name.to_string();
                match method {
                    "POST" => Route::Invoke(name),
                    "PUT" => Route::Register(name),
                    "DELETE" => Route::Remove(name),
                    "GET" | "HEAD" => Route::Describe(name),
                    _ => Route::MethodNotAllowed {
                        allow: "GET, HEAD, POST, PUT, DELETE",
                    },
                }
            }
            _ => Route::NotFound,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions() {
        assert_eq!(route("POST", "/f/hello"), Route::Invoke("hello".into()));
        assert_eq!(route("PUT", "/f/hello"), Route::Register("hello".into()));
        assert_eq!(route("DELETE", "/f/hello/"), Route::Remove("hello".into()));
        assert_eq!(route("GET", "/f/hello"), Route::Describe("hello".into()));
        assert_eq!(route("GET", "/f"), Route::List);
        assert_eq!(route("GET", "/f/"), Route::List);
        assert_eq!(route("POST", "/f/a/b"), Route::NotFound);
        assert_eq!(route("POST", "/f//"), Route::NotFound);
        assert!(matches!(
            route("PATCH", "/f/x"),
            Route::MethodNotAllowed { .. }
        ));
        assert!(matches!(
            route("POST", "/f"),
            Route::MethodNotAllowed { .. }
        ));
    }

    #[test]
    fn probes() {
        assert_eq!(route("GET", "/healthz"), Route::Health);
        assert_eq!(route("HEAD", "/readyz"), Route::Ready);
        assert_eq!(route("GET", "/metrics"), Route::Metrics);
        assert!(matches!(
            route("POST", "/metrics"),
            Route::MethodNotAllowed { .. }
        ));
        assert_eq!(route("GET", "/"), Route::NotFound);
        assert_eq!(route("GET", ""), Route::NotFound);
        assert_eq!(route("GET", "/healthzz"), Route::NotFound);
    }
}
