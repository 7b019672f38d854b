//! F5 AS3 3.56's rules as pure functions, shared by bigip-operator (its pre-flight checks) and
//! its BIG-IP simulator (which must refuse what a real BIG-IP refuses): the AS3 JSON schema
//! with F5's custom formats ([`schema`], [`formats`]), AS3's parser-level checks besides the
//! schema ([`digest`]), and BIG-IP version numbers ([`version`]).

pub mod digest;
pub mod formats;
pub mod schema;
pub mod version;
