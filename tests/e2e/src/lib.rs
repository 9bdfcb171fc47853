//! End-to-end tests of the platform live in `tests/`: they start the built service binaries
//! (`aurum-auth`, `aurum-gateway`, `aurum-ingestion`, `aurum-prediction`) as separate
//! processes against a fresh database, a broker and an OTLP receiver of their own, and look
//! at what a deployment would show: traces, logs and answers. This library is empty.
