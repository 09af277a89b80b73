//! Alerts (issue 18): rules and the mode ([`rules`], pure), what a notification says
//! ([`message`], pure), the channels as configured ([`channels`]), turning stored events into
//! queued notifications ([`engine`], in the transaction that stores them), and delivering
//! the outbox ([`deliver`], with one sender per kind of channel: [`webhook`], [`ntfy`],
//! [`smtp`], [`mqtt`]); health conditions raised and recovered ([`health`]).

pub mod channels;
pub mod conditions;
pub mod deliver;
pub mod engine;
pub mod health;
pub mod message;
pub mod mqtt;
pub mod ntfy;
pub mod rules;
pub mod smtp;
pub mod webhook;
