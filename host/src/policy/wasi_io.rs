//! The `wasi:io` streams and poll that policy calls see, safe to run on an async worker
//! ([`super::engine::OnWorker`]). wasmtime-wasi's synchronous host functions that may
//! block (`blocking-*`, `poll`, `ready`, `block`, and stream drops) run a future with
//! tokio's `Handle::block_on`, which panics on a tokio worker thread. Here, on a worker,
//! they stop the call instead, marked [`super::engine::CallState::overran`], so the engine
//! redoes it off the worker, where they run exactly as wasmtime-wasi implements them.
//! Every other function is wasmtime-wasi's, unchanged. (A component reaches these only to
//! print, which Rust's std does when it panics: the rare path, not the call's.)

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::sync::io::poll::{self, Pollable};
use wasmtime_wasi::p2::bindings::sync::io::streams::{self, InputStream, OutputStream};
use wasmtime_wasi::p2::{StreamError, StreamResult};

use super::engine::OnWorker;

/// A call's resource table, and where to mark the call for a redo off the worker.
pub(crate) struct Guarded<'a> {
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) overran: &'a mut bool,
}

impl Guarded<'_> {
    /// On an async worker: mark the call and stop it (the engine redoes it off the worker).
    fn may_block(&mut self) -> wasmtime::Result<()> {
        if OnWorker::here() {
            *self.overran = true;
            return Err(wasmtime::format_err!(
                "a blocking WASI call on an async worker (the call is redone off it)"
            ));
        }
        Ok(())
    }

    fn may_block_stream(&mut self) -> StreamResult<()> {
        self.may_block().map_err(StreamError::Trap)
    }
}

impl streams::Host for Guarded<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        streams::Host::convert_stream_error(self.table, err)
    }
}

impl streams::HostOutputStream for Guarded<'_> {
    fn drop(&mut self, stream: Resource<OutputStream>) -> wasmtime::Result<()> {
        self.may_block()?;
        streams::HostOutputStream::drop(self.table, stream)
    }

    fn check_write(&mut self, stream: Resource<OutputStream>) -> StreamResult<u64> {
        streams::HostOutputStream::check_write(self.table, stream)
    }

    fn write(&mut self, stream: Resource<OutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        streams::HostOutputStream::write(self.table, stream, bytes)
    }

    fn blocking_write_and_flush(
        &mut self,
        stream: Resource<OutputStream>,
        bytes: Vec<u8>,
    ) -> StreamResult<()> {
        self.may_block_stream()?;
        streams::HostOutputStream::blocking_write_and_flush(self.table, stream, bytes)
    }

    fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: Resource<OutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        self.may_block_stream()?;
        streams::HostOutputStream::blocking_write_zeroes_and_flush(self.table, stream, len)
    }

    fn subscribe(
        &mut self,
        stream: Resource<OutputStream>,
    ) -> wasmtime::Result<Resource<Pollable>> {
        streams::HostOutputStream::subscribe(self.table, stream)
    }

    fn write_zeroes(&mut self, stream: Resource<OutputStream>, len: u64) -> StreamResult<()> {
        streams::HostOutputStream::write_zeroes(self.table, stream, len)
    }

    fn flush(&mut self, stream: Resource<OutputStream>) -> StreamResult<()> {
        streams::HostOutputStream::flush(self.table, stream)
    }

    fn blocking_flush(&mut self, stream: Resource<OutputStream>) -> StreamResult<()> {
        self.may_block_stream()?;
        streams::HostOutputStream::blocking_flush(self.table, stream)
    }

    fn splice(
        &mut self,
        dst: Resource<OutputStream>,
        src: Resource<InputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        streams::HostOutputStream::splice(self.table, dst, src, len)
    }

    fn blocking_splice(
        &mut self,
        dst: Resource<OutputStream>,
        src: Resource<InputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        self.may_block_stream()?;
        streams::HostOutputStream::blocking_splice(self.table, dst, src, len)
    }
}

impl streams::HostInputStream for Guarded<'_> {
    fn drop(&mut self, stream: Resource<InputStream>) -> wasmtime::Result<()> {
        self.may_block()?;
        streams::HostInputStream::drop(self.table, stream)
    }

    fn read(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<Vec<u8>> {
        streams::HostInputStream::read(self.table, stream, len)
    }

    fn blocking_read(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<Vec<u8>> {
        self.may_block_stream()?;
        streams::HostInputStream::blocking_read(self.table, stream, len)
    }

    fn skip(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<u64> {
        streams::HostInputStream::skip(self.table, stream, len)
    }

    fn blocking_skip(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<u64> {
        self.may_block_stream()?;
        streams::HostInputStream::blocking_skip(self.table, stream, len)
    }

    fn subscribe(&mut self, stream: Resource<InputStream>) -> wasmtime::Result<Resource<Pollable>> {
        streams::HostInputStream::subscribe(self.table, stream)
    }
}

impl poll::Host for Guarded<'_> {
    fn poll(&mut self, pollables: Vec<Resource<Pollable>>) -> wasmtime::Result<Vec<u32>> {
        self.may_block()?;
        poll::Host::poll(self.table, pollables)
    }
}

impl poll::HostPollable for Guarded<'_> {
    fn ready(&mut self, pollable: Resource<Pollable>) -> wasmtime::Result<bool> {
        self.may_block()?;
        poll::HostPollable::ready(self.table, pollable)
    }

    fn block(&mut self, pollable: Resource<Pollable>) -> wasmtime::Result<()> {
        self.may_block()?;
        poll::HostPollable::block(self.table, pollable)
    }

    fn drop(&mut self, pollable: Resource<Pollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(self.table, pollable)
    }
}
