//! A C guest paused at a host call is snapshotted, restored into a fresh
//! instance on a fresh memory, and continues to the same output: memory,
//! heap, stack pointer and TLS base all survive.

use std::path::Path;
use std::sync::{Arc, Mutex};

use wasmtime::{Caller, Linker, Module, SharedMemory, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use weft_runtime::snapshot::{self, SnapshotLayout};
use weft_snapshot::{ModuleHash, Snapshot, wire};

struct State {
    wasi: WasiP1Ctx,
}

struct Guest {
    module: Module,
    layout: SnapshotLayout,
}

fn guest() -> Guest {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests/checkpoint.c");
    let suite = weft_conformance::Suite::new(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("weft-guests"),
        env!("CARGO_BIN_EXE_weft"),
    );
    let wasm = std::fs::read(suite.build_c_wasm(&source, "host_test_checkpoint").unwrap()).unwrap();
    let instrumented = weft_runtime::rewrite::export_mutable_globals(&wasm).unwrap();
    let engine = weft_runtime::engine().unwrap();
    Guest {
        module: Module::new(&engine, &instrumented.bytes).unwrap(),
        layout: SnapshotLayout {
            module: ModuleHash::of(&wasm),
            mutable_globals: instrumented.mutable_globals,
        },
    }
}

/// Instantiates the guest on a fresh memory; `checkpoint` stores a snapshot
/// in `taken`.
fn instantiate(
    guest: &Guest,
    taken: Arc<Mutex<Option<Snapshot>>>,
) -> (
    Store<State>,
    wasmtime::Instance,
    SharedMemory,
    MemoryOutputPipe,
) {
    let engine = guest.module.engine();
    let stdout = MemoryOutputPipe::new(1 << 20);
    let wasi = WasiCtxBuilder::new().stdout(stdout.clone()).build_p1();
    let mut store = Store::new(engine, State { wasi });
    store.set_epoch_deadline(weft_runtime::NEVER);
    let memory_ty = guest
        .module
        .imports()
        .find_map(|i| i.ty().memory().cloned())
        .unwrap();
    let memory = SharedMemory::new(engine, memory_ty).unwrap();
    let mut linker: Linker<State> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s| &mut s.wasi).unwrap();
    linker
        .define(&store, "env", "memory", memory.clone())
        .unwrap();
    let layout = guest.layout.clone();
    let shared = memory.clone();
    linker
        .func_wrap(
            "weft_test",
            "checkpoint",
            move |mut caller: Caller<'_, State>| {
                let globals = snapshot::caller_globals(&mut caller, &layout)?;
                // SAFETY: the only thread of this instance is paused here.
                let snap =
                    unsafe { snapshot::capture(&mut caller, &globals, &shared, &layout, vec![]) }?;
                *taken.lock().unwrap() = Some(snap);
                Ok(())
            },
        )
        .unwrap();
    // libweft's chain-mode paths import weft:threads; this test never
    // takes them.
    linker
        .define_unknown_imports_as_traps(&guest.module)
        .unwrap();
    let instance = linker.instantiate(&mut store, &guest.module).unwrap();
    (store, instance, memory, stdout)
}

#[test]
fn paused_guest_continues_from_its_snapshot() {
    let guest = guest();
    let taken = Arc::new(Mutex::new(None));

    let (mut store, instance, _memory, stdout) = instantiate(&guest, taken.clone());
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .unwrap();
    start.call(&mut store, ()).unwrap();
    let original = String::from_utf8(stdout.contents().to_vec()).unwrap();
    let (before, after) = original.split_once('\n').unwrap();
    assert_eq!(before, "before the pause");
    assert!(
        after.starts_with("resumes=1 tls=42 sum=385 stack=0x"),
        "{after}"
    );

    // The snapshot goes through the wire format, as it would between hosts.
    let snap = taken.lock().unwrap().take().expect("checkpoint was called");
    let snap = wire::decode_snapshot(&wire::encode_snapshot(&snap), &Default::default()).unwrap();
    assert!(
        snap.globals.len() >= 2,
        "stack pointer and TLS base: {:?}",
        snap.globals
    );

    let (mut store, instance, memory, stdout) = instantiate(&guest, Arc::new(Mutex::new(None)));
    snapshot::restore(&mut store, &instance, &memory, &guest.layout, &snap).unwrap();
    let globals = snapshot::instance_globals(&mut store, &instance, &guest.layout).unwrap();
    assert_eq!(
        snapshot::read_globals(&mut store, &globals).unwrap(),
        snap.globals
    );
    let resume = instance
        .get_typed_func::<(), ()>(&mut store, "resume")
        .unwrap();
    resume.call(&mut store, ()).unwrap();
    let restored = String::from_utf8(stdout.contents().to_vec()).unwrap();
    assert_eq!(
        restored, after,
        "the restored instance continues exactly as the original did"
    );

    // What the restored instance changed is a small diff against the snapshot.
    // SAFETY: the instance's only thread has returned.
    let diff = unsafe { snapshot::diff(&mut store, &globals, &memory, &snap) }.unwrap();
    assert!(
        diff.changed_bytes() > 0 && diff.changed_bytes() < 64 * 1024,
        "{}",
        diff.changed_bytes()
    );
}

#[test]
fn restore_refuses_another_module_and_oversized_memory() {
    let guest = guest();
    let (mut store, instance, memory, _) = instantiate(&guest, Arc::new(Mutex::new(None)));
    let mut other = Snapshot::capture(ModuleHash::of(b"another module"), &[], None, vec![], vec![]);
    let err = snapshot::restore(&mut store, &instance, &memory, &guest.layout, &other).unwrap_err();
    assert!(err.to_string().contains("belongs to module"), "{err}");

    other.module = guest.layout.module;
    other.memory_pages = 1 << 16; // 4 GiB: above weft-cc's 256 MiB maximum
    let err = snapshot::restore(&mut store, &instance, &memory, &guest.layout, &other).unwrap_err();
    assert!(err.to_string().contains("exceeds the maximum"), "{err}");
}
