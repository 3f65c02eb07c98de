//! The web dashboards, served from inside the binary: HTML pages (MiniJinja templates in
//! `query/web/`), one stylesheet and one script (no build step, no third-party script), and
//! the charts as SVG drawn on the server ([`chart`]).
//!
//! | page | who | what |
//! |---|---|---|
//! | `/login`, `/set-password` | anyone | log in; set a password from an invitation or reset link |
//! | `/account` | every user | who am I, change password |
//! | `/dashboard` | advertiser users, admins | scorecards against the previous period, charts, funnel, tables, CSV exports, attribution audits |
//! | `/promos` | advertiser users, admins | newsletter promos: CTR per day with its interval, offers compared, variations with intervals, probability of being best and significance |
//! | `/my` | influencer users | their clicks and sales, "my traffic" and "my conversions", their campaigns' links and coupons |
//! | `/admin` | admins | platform health: active advertisers, events this month, processor lag, dead letter, webhook and postback deliveries (with replay), recent sign-ups |
//! | `/admin/{advertisers,keys,campaigns,influencers,links,coupons,offers,users}` | admins | manage the catalog |
//!
//! Every page reads its figures from the JSON API with the session cookie, so a page shows
//! exactly what its user's role may see (`docs/roles.md`). Pages answer with a strict
//! Content-Security-Policy (scripts, styles and connections from the same origin only).

pub mod chart;
pub mod ctr_chart;
pub mod pictures;

use crate::QueryState;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use clicktrail_api::error::ApiError;
use clicktrail_api::session::{Principal, SessionUser, authenticate};
use clicktrail_schemas::catalog::{Status, UserRole};
use minijinja::{Environment, context};
use serde::Serialize;
use std::sync::OnceLock;

const CSS: &str = include_str!("../../web/app.css");
const JS: &str = include_str!("../../web/app.js");

const TEMPLATES: [(&str, &str); 10] = [
    ("base.html", include_str!("../../web/base.html")),
    ("range.html", include_str!("../../web/range.html")),
    ("login.html", include_str!("../../web/login.html")),
    (
        "set_password.html",
        include_str!("../../web/set_password.html"),
    ),
    ("account.html", include_str!("../../web/account.html")),
    ("dashboard.html", include_str!("../../web/dashboard.html")),
    ("my.html", include_str!("../../web/my.html")),
    ("admin.html", include_str!("../../web/admin.html")),
    ("manage.html", include_str!("../../web/manage.html")),
    ("promos.html", include_str!("../../web/promos.html")),
];

/// The admin's management sections: path segment and label.
const SECTIONS: [(&str, &str); 8] = [
    ("advertisers", "Advertisers"),
    ("keys", "API keys"),
    ("campaigns", "Campaigns"),
    ("influencers", "Influencers"),
    ("links", "Links"),
    ("coupons", "Coupons"),
    ("offers", "Promo offers"),
    ("users", "Users"),
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .expect("the page templates are valid");
        }
        env
    })
}

/// A short fingerprint of the script and stylesheet, so that browsers fetch them again after
/// an upgrade (`?v=`).
fn version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut h = DefaultHasher::new();
        (CSS, JS).hash(&mut h);
        format!("{:016x}", h.finish())
    })
}

/// The pages and their assets (outside the query limits: rendering a page runs no query).
pub(crate) fn pages() -> Router<QueryState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/set-password", get(set_password))
        .route("/account", get(account))
        .route("/dashboard", get(dashboard))
        .route("/promos", get(promos))
        .route("/my", get(my))
        .route("/admin", get(admin))
        .route("/admin/{section}", get(manage))
        .route(
            "/assets/app.css",
            get(|| asset(CSS, "text/css; charset=utf-8")),
        )
        .route(
            "/assets/app.js",
            get(|| asset(JS, "text/javascript; charset=utf-8")),
        )
}

/// The charts' API routes (inside the query limits).
pub(crate) fn routes() -> Router<QueryState> {
    Router::new()
        .route("/api/v1/stats/chart.svg", get(pictures::chart_svg))
        .route("/api/v1/me/stats/chart.svg", get(pictures::my_chart_svg))
}

async fn asset(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

#[derive(Serialize)]
struct UserCtx {
    name: String,
    email: String,
    role: UserRole,
}

#[derive(Serialize)]
struct NavItem {
    href: &'static str,
    label: &'static str,
    current: bool,
}

/// The logged-in user of a page request (session cookie or bearer session token).
fn user(state: &QueryState, headers: &HeaderMap) -> Option<SessionUser> {
    let catalog = state.catalog.snapshot();
    match authenticate(headers, &Method::GET, &catalog, &state.admin_token) {
        Ok(Some(Principal::User(u))) => Some(u),
        _ => None,
    }
}

fn home_of(role: UserRole) -> &'static str {
    match role {
        UserRole::Admin => "/admin",
        UserRole::Advertiser => "/dashboard",
        UserRole::Influencer => "/my",
    }
}

fn nav(role: UserRole, current: &str) -> Vec<NavItem> {
    let items: &[(&'static str, &'static str)] = match role {
        UserRole::Admin => &[
            ("/admin", "Health"),
            ("/dashboard", "Dashboard"),
            ("/promos", "Promos"),
            ("/admin/advertisers", "Manage"),
            ("/account", "Account"),
        ],
        UserRole::Advertiser => &[
            ("/dashboard", "Dashboard"),
            ("/promos", "Promos"),
            ("/account", "Account"),
        ],
        UserRole::Influencer => &[("/my", "My dashboard"), ("/account", "Account")],
    };
    items
        .iter()
        .map(|&(href, label)| NavItem {
            href,
            label,
            current: href == current
                || (href == "/admin/advertisers" && current.starts_with("/admin/")),
        })
        .collect()
}

fn render(template: &str, ctx: minijinja::Value) -> Response {
    match env().get_template(template).and_then(|t| t.render(ctx)) {
        Ok(html) => {
            let mut resp =
                ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
            let h = resp.headers_mut();
            for (name, value) in [
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
                ),
                (header::X_FRAME_OPTIONS, "DENY"),
                (header::REFERRER_POLICY, "same-origin"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::CACHE_CONTROL, "no-store"),
            ] {
                h.insert(name, HeaderValue::from_static(value));
            }
            resp
        }
        Err(e) => ApiError::Internal(format!("page {template}: {e}")).into_response(),
    }
}

/// Renders a page for the logged-in user if their role is among `roles`; else sends them
/// to log in (no session) or to their own home page (another role).
fn guarded(
    state: &QueryState,
    headers: &HeaderMap,
    path: &str,
    roles: &[UserRole],
    page: impl FnOnce(SessionUser) -> Response,
) -> Response {
    match user(state, headers) {
        None => Redirect::to(&format!("/login?next={}", urlencode(path))).into_response(),
        Some(u) if roles.contains(&u.role) => page(u),
        Some(u) => Redirect::to(home_of(u.role)).into_response(),
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn user_ctx(state: &QueryState, u: &SessionUser) -> UserCtx {
    let name = state
        .catalog
        .snapshot()
        .users
        .get(&u.id)
        .map(|x| x.name.clone())
        .unwrap_or_else(|| u.email.clone());
    UserCtx {
        name,
        email: u.email.clone(),
        role: u.role,
    }
}

async fn home(State(state): State<QueryState>, headers: HeaderMap) -> Response {
    match user(&state, &headers) {
        Some(u) => Redirect::to(home_of(u.role)).into_response(),
        None => Redirect::to("/login").into_response(),
    }
}

async fn login(State(state): State<QueryState>, headers: HeaderMap) -> Response {
    if let Some(u) = user(&state, &headers) {
        return Redirect::to(home_of(u.role)).into_response();
    }
    render(
        "login.html",
        context! { title => "Log in", heading => "Log in", page => "login", version => version() },
    )
}

async fn set_password() -> Response {
    render(
        "set_password.html",
        context! { title => "Set your password", heading => "Set your password", page => "set-password", version => version() },
    )
}

async fn account(State(state): State<QueryState>, headers: HeaderMap) -> Response {
    let roles = [UserRole::Admin, UserRole::Advertiser, UserRole::Influencer];
    guarded(&state, &headers, "/account", &roles, |u| {
        render(
            "account.html",
            context! { title => "Account", heading => "Your account", page => "account", version => version(),
            user => user_ctx(&state, &u), nav => nav(u.role, "/account") },
        )
    })
}

#[derive(Serialize)]
struct TableCtx {
    id: &'static str,
    title: &'static str,
    source: &'static str,
    key: &'static str,
    note: Option<&'static str>,
}

fn t(id: &'static str, title: &'static str, key: &'static str) -> TableCtx {
    TableCtx {
        id,
        title,
        source: id,
        key,
        note: (id == "per-sub-id").then_some(
            "Only clicks that carried a sub id (/r/code/sub-id), and the conversions credited to them.",
        ),
    }
}

#[derive(Serialize)]
struct Named {
    id: String,
    name: String,
}

async fn dashboard(State(state): State<QueryState>, headers: HeaderMap) -> Response {
    guarded(
        &state,
        &headers,
        "/dashboard",
        &[UserRole::Admin, UserRole::Advertiser],
        |u| {
            let catalog = state.catalog.snapshot();
            let advertisers = advertiser_choices(&catalog, &u);
            let heading = u
                .advertiser_id
                .as_ref()
                .and_then(|a| catalog.advertisers.get(a))
                .map(|a| format!("{} dashboard", a.name))
                .unwrap_or_else(|| "Dashboard".into());
            render(
                "dashboard.html",
                context! { title => "Dashboard", heading => heading, page => "dashboard", version => version(),
                user => user_ctx(&state, &u), nav => nav(u.role, "/dashboard"), advertisers => advertisers,
                tables => [t("per-influencer", "By influencer", "Influencer"), t("per-campaign", "By campaign", "Campaign"),
                    t("per-link", "By link", "Link"), t("per-sub-id", "By sub id", "Sub id")] },
            )
        },
    )
}

/// The advertisers a page's user may choose between: every one for an admin, none for an
/// advertiser user (who sees its own).
fn advertiser_choices(catalog: &clicktrail_schemas::Catalog, u: &SessionUser) -> Vec<Named> {
    let mut advertisers: Vec<Named> = if u.role == UserRole::Admin {
        catalog
            .advertisers
            .values()
            .map(|a| Named {
                id: a.id.clone(),
                name: a.name.clone(),
            })
            .collect()
    } else {
        Vec::new()
    };
    advertisers.sort_by(|a, b| a.name.cmp(&b.name));
    advertisers
}

/// Newsletter promos: CTR over time, offers compared, variations with their intervals.
async fn promos(State(state): State<QueryState>, headers: HeaderMap) -> Response {
    guarded(
        &state,
        &headers,
        "/promos",
        &[UserRole::Admin, UserRole::Advertiser],
        |u| {
            let catalog = state.catalog.snapshot();
            render(
                "promos.html",
                context! { title => "Promos", heading => "Newsletter promos", page => "promos",
                version => version(), user => user_ctx(&state, &u), nav => nav(u.role, "/promos"),
                advertisers => advertiser_choices(&catalog, &u) },
            )
        },
    )
}

async fn my(State(state): State<QueryState>, headers: HeaderMap) -> Response {
    guarded(&state, &headers, "/my", &[UserRole::Influencer], |u| {
        let catalog = state.catalog.snapshot();
        let heading = u
            .influencer_id
            .as_ref()
            .and_then(|i| catalog.influencers.get(i))
            .filter(|i| i.status == Status::Active)
            .map(|i| format!("Hello, {}", i.name))
            .unwrap_or_else(|| "My dashboard".into());
        render(
            "my.html",
            context! { title => "My dashboard", heading => heading, page => "my", version => version(),
            user => user_ctx(&state, &u), nav => nav(u.role, "/my"),
            tables => [t("per-campaign", "By campaign", "Campaign"), t("per-link", "By link", "Link"), t("per-sub-id", "By sub id", "Sub id")] },
        )
    })
}

async fn admin(State(state): State<QueryState>, headers: HeaderMap) -> Response {
    guarded(&state, &headers, "/admin", &[UserRole::Admin], |u| {
        render(
            "admin.html",
            context! { title => "Platform health", heading => "Platform health", page => "admin", version => version(),
            user => user_ctx(&state, &u), nav => nav(u.role, "/admin") },
        )
    })
}

#[derive(Serialize)]
struct SectionCtx {
    id: &'static str,
    label: &'static str,
}

async fn manage(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Path(section): Path<String>,
) -> Response {
    let Some(&(id, label)) = SECTIONS.iter().find(|(s, _)| *s == section) else {
        return ApiError::NotFound(format!("no admin page `{section}`")).into_response();
    };
    let path = format!("/admin/{id}");
    guarded(&state, &headers, &path, &[UserRole::Admin], |u| {
        render(
            "manage.html",
            context! { title => label, heading => label, page => "manage", version => version(),
            user => user_ctx(&state, &u), nav => nav(u.role, &path), section => id,
            sections => SECTIONS.iter().map(|&(id, label)| SectionCtx { id, label }).collect::<Vec<_>>() },
        )
    })
}
