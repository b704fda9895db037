//! Consumed bytes into Python objects: record values into events, header lists into Python
//! lists. Needs pyo3 and jiter but not librdkafka, so the fuzz targets (`fuzz/`, decision 47)
//! build this exact code without compiling librdkafka.

pub mod event;
pub mod headers;
