use super::*;

use wasmtime::{Engine, Instance, Module, Store, Val};

/// The module `wat` and the same after the rewrite, which must have
/// inlined something and be valid.
fn both(wat: &str) -> (Vec<u8>, Vec<u8>) {
    let original = wat::parse_str(wat).unwrap();
    let rewritten = inline_recursion(&original)
        .unwrap()
        .expect("a function is inlined into itself");
    wasmparser::Validator::new()
        .validate_all(&rewritten)
        .expect("the rewritten module is valid");
    (original, rewritten)
}

/// Calls export `name` of each module with `args`: the results, and the
/// memory's first bytes when the module exports one.
fn run(wasm: &[u8], name: &str, args: &[Val]) -> (Vec<String>, Vec<u8>) {
    let engine = Engine::default();
    let module = Module::new(&engine, wasm).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let func = instance.get_func(&mut store, name).unwrap();
    let mut results = vec![Val::I32(0); func.ty(&store).results().len()];
    let outcome = func.call(&mut store, args, &mut results);
    let mut shown: Vec<String> = results.iter().map(|v| format!("{v:?}")).collect();
    if let Err(e) = outcome {
        shown = vec![format!("trap: {:?}", e.downcast_ref::<wasmtime::Trap>())];
    }
    let memory = instance
        .get_memory(&mut store, "memory")
        .map(|m| m.data(&store)[..256].to_vec())
        .unwrap_or_default();
    (shown, memory)
}

/// Calls of `function` (a defined function's index) in each body.
fn self_calls(wasm: &[u8], function: u32) -> Vec<usize> {
    let mut imported = 0;
    let mut counts = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.unwrap() {
            Payload::ImportSection(reader) => {
                imported += reader
                    .into_imports()
                    .filter(|i| {
                        matches!(
                            i.as_ref().unwrap().ty,
                            TypeRef::Func(_) | TypeRef::FuncExact(_)
                        )
                    })
                    .count() as u32;
            }
            Payload::CodeSectionEntry(body) => {
                let me = imported + counts.len() as u32;
                let calls = body
                    .get_operators_reader()
                    .unwrap()
                    .into_iter()
                    .filter(|op| matches!(op, Ok(Operator::Call { function_index }) if *function_index == function))
                    .count();
                counts.push(if me == function { calls } else { usize::MAX });
            }
            _ => {}
        }
    }
    counts.into_iter().filter(|&c| c != usize::MAX).collect()
}

/// fib as LLVM leaves it: one call in a loop, the other folded into it.
const FIB: &str = r#"
(module
  (func $fib (export "f") (param i32) (result i64)
    (local i64 i32 i32)
    (local.set 1 (i64.const 0))
    (block
      (block
        (br_if 0 (i32.ge_s (local.get 0) (i32.const 2)))
        (local.set 2 (local.get 0))
        (br 1))
      (local.set 1 (i64.const 0))
      (loop
        (local.set 1 (i64.add (call $fib (i32.add (local.get 0) (i32.const -1))) (local.get 1)))
        (local.set 3 (i32.lt_u (local.get 0) (i32.const 4)))
        (local.set 0 (local.tee 2 (i32.add (local.get 0) (i32.const -2))))
        (br_if 0 (i32.eqz (local.get 3)))))
    (i64.add (local.get 1) (i64.extend_i32_s (local.get 2)))))
"#;

#[test]
fn fib_gives_the_same_numbers_with_the_copy_that_calls_itself_again() {
    let (original, rewritten) = both(FIB);
    // The one call became a copy of the body, whose one call became a
    // copy again, which calls once.
    assert_eq!(self_calls(&original, 0), [1]);
    assert_eq!(self_calls(&rewritten, 0), [1]);
    assert!(rewritten.len() > original.len());
    for n in 0..25 {
        let args = [Val::I32(n)];
        assert_eq!(
            run(&original, "f", &args),
            run(&rewritten, "f", &args),
            "fib({n})"
        );
    }
    assert_eq!(run(&rewritten, "f", &[Val::I32(24)]).0, ["I64(46368)"]);
}

#[test]
fn two_calls_give_two_copies_each_with_two_copies_each_with_two_calls() {
    let wat = r#"
(module
  (func $fib (export "f") (param i32) (result i32)
    (if (result i32) (i32.lt_s (local.get 0) (i32.const 2))
      (then (local.get 0))
      (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                     (call $fib (i32.sub (local.get 0) (i32.const 2))))))))
"#;
    let (original, rewritten) = both(wat);
    assert_eq!(self_calls(&rewritten, 0), [8]);
    for n in 0..22 {
        let args = [Val::I32(n)];
        assert_eq!(
            run(&original, "f", &args),
            run(&rewritten, "f", &args),
            "fib({n})"
        );
    }
}

/// Every way out of a body: `return` at several depths, with values
/// under the result on the stack, a branch to the function's label, and
/// falling off the end; and calls in the middle of an expression.
const EXITS: &str = r#"
(module
  (func $g (export "f") (param $n i32) (param $k i64) (result i64)
    (local $i i32)
    (if (i32.le_s (local.get $n) (i32.const 0)) (then (return (local.get $k))))
    (block $out
      (loop $again
        (i32.const 99)
        (drop)
        (if (i32.eq (local.get $i) (i32.const 3))
          (then
            (i64.const 7)
            (return (i64.mul (local.get $k) (call $g (i32.sub (local.get $n) (i32.const 2)) (i64.const 3))))))
        (block $a (block $b (block $c
          (br_table $a $b $c $b (i32.rem_u (local.get $n) (i32.const 5))))
          ;; $c: leave through the function's label
          (br 4 (i64.add (local.get $k) (call $g (i32.sub (local.get $n) (i32.const 1)) (i64.const 2)))))
          ;; $b
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $again))
        ;; $a
        (br_if $out (i32.gt_u (local.get $i) (i32.const 5)))
        (local.set $i (i32.add (local.get $i) (i32.const 2)))
        (br $again)))
    (i64.sub (call $g (i32.sub (local.get $n) (i32.const 3)) (local.get $k)) (i64.extend_i32_u (local.get $i)))))
"#;

#[test]
fn returns_and_branches_to_the_functions_label_leave_only_the_copy() {
    let (original, rewritten) = both(EXITS);
    // Three calls: 3 copies of the first level, 9 of the second, each
    // with three calls.
    assert_eq!(self_calls(&rewritten, 0), [27]);
    for n in -1..30 {
        for k in [0i64, 1, 5] {
            let args = [Val::I32(n), Val::I64(k)];
            assert_eq!(
                run(&original, "f", &args),
                run(&rewritten, "f", &args),
                "g({n}, {k})"
            );
        }
    }
}

/// Locals of every number and vector type, read before they are written
/// and summed over a loop whose every round runs the copy again: a copy
/// whose locals kept the last round's values would count them twice.
const LOCALS: &str = r#"
(module
  (func $h (export "f") (param $n i32) (result f64)
    (local $acc i64) (local $x f64) (local $y f32) (local $v v128) (local $r i32)
    (if (i32.le_s (local.get $n) (i32.const 0)) (then (return (f64.const 0.5))))
    (loop $round
      (local.set $acc (i64.add (local.get $acc) (i64.trunc_f64_s (call $h (i32.sub (local.get $n) (i32.const 1))))))
      (local.set $x (f64.add (local.get $x) (f64.const 1.25)))
      (local.set $y (f32.add (local.get $y) (f32.const 2)))
      (local.set $v (i32x4.add (local.get $v) (i32x4.splat (local.get $n))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br_if $round (i32.lt_u (local.get $r) (i32.const 3))))
    (f64.add
      (f64.add (f64.convert_i64_s (local.get $acc)) (local.get $x))
      (f64.add (f64.promote_f32 (local.get $y))
               (f64.convert_i32_s (i32x4.extract_lane 2 (local.get $v)))))))
"#;

#[test]
fn the_copys_locals_start_at_zero_every_time_it_runs() {
    let (original, rewritten) = both(LOCALS);
    for n in 0..7 {
        let args = [Val::I32(n)];
        assert_eq!(
            run(&original, "f", &args),
            run(&rewritten, "f", &args),
            "h({n})"
        );
    }
}

#[test]
fn a_function_of_no_result_that_writes_memory_writes_the_same() {
    let wat = r#"
(module
  (memory (export "memory") 1)
  (func $fill (export "f") (param $at i32) (param $len i32) (param $value i32)
    (local $half i32)
    ;; Nothing to fill: out through a branch table naming the function.
    (block (br_table 0 1 (i32.eqz (local.get $len))))
    (if (i32.le_s (local.get $len) (i32.const 1))
      (then
        (if (i32.eq (local.get $len) (i32.const 1))
          (then (i32.store8 (local.get $at) (local.get $value))))
        (return)))
    (local.set $half (i32.shr_u (local.get $len) (i32.const 1)))
    (call $fill (local.get $at) (local.get $half) (local.get $value))
    (call $fill (i32.add (local.get $at) (local.get $half))
                (i32.sub (local.get $len) (local.get $half))
                (i32.add (local.get $value) (local.get $half)))))
"#;
    let (original, rewritten) = both(wat);
    for len in [0, 1, 2, 7, 100, 256] {
        let args = [Val::I32(0), Val::I32(len), Val::I32(1)];
        assert_eq!(
            run(&original, "f", &args),
            run(&rewritten, "f", &args),
            "fill {len}"
        );
    }
}

#[test]
fn a_trap_in_the_copy_is_the_same_trap() {
    let wat = r#"
(module
  (func $d (export "f") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.div_s (i32.const 1) (local.get 0)))
      (else (i32.add (i32.const 1) (call $d (i32.sub (local.get 0) (i32.const 1))))))))
"#;
    let (original, rewritten) = both(wat);
    for n in 0..4 {
        let args = [Val::I32(n)];
        let expected = run(&original, "f", &args);
        assert!(
            expected.0[0].contains("IntegerDivisionByZero"),
            "{expected:?}"
        );
        assert_eq!(expected, run(&rewritten, "f", &args));
    }
}

#[test]
fn several_results_are_inlined_when_the_module_has_their_block_type() {
    let pair = r#"
(module
  (type (func (result i32 i64)))
  (func $p (export "f") (param i32) (result i32 i64)
    (if (i32.le_s (local.get 0) (i32.const 0))
      (then (return (i32.const 1) (i64.const 1))))
    (call $p (i32.sub (local.get 0) (i32.const 1)))
    (i64.const 3)
    (i64.mul)))
"#;
    let (original, rewritten) = both(pair);
    for n in 0..10 {
        let args = [Val::I32(n)];
        assert_eq!(
            run(&original, "f", &args),
            run(&rewritten, "f", &args),
            "p({n})"
        );
    }
    // Without a type `[] -> [i32 i64]` there is no block to hold the copy.
    let without = pair.replace("(type (func (result i32 i64)))", "");
    assert!(
        inline_recursion(&wat::parse_str(without).unwrap())
            .unwrap()
            .is_none()
    );
}

#[test]
fn imports_and_other_functions_keep_their_places() {
    let wat = r#"
(module
  (import "env" "hook" (func $hook (param i32)))
  (func $other (export "other") (result i32) (i32.const 5))
  (func $fib (export "f") (param i32) (result i32)
    (call $hook (local.get 0))
    (if (result i32) (i32.lt_s (local.get 0) (i32.const 2))
      (then (local.get 0))
      (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                     (i32.add (call $other) (call $fib (i32.sub (local.get 0) (i32.const 2)))))))))
"#;
    let original = wat::parse_str(wat).unwrap();
    let rewritten = inline_recursion(&original).unwrap().unwrap();
    wasmparser::Validator::new()
        .validate_all(&rewritten)
        .unwrap();
    assert_eq!(self_calls(&rewritten, 2), [8]);
    // The hook sees every activation, the copies' too, in the same order.
    let calls = |wasm: &[u8]| {
        let engine = Engine::default();
        let module = Module::new(&engine, wasm).unwrap();
        let mut store = Store::new(&engine, Vec::<i32>::new());
        let hook = wasmtime::Func::wrap(
            &mut store,
            |mut caller: wasmtime::Caller<'_, Vec<i32>>, n: i32| caller.data_mut().push(n),
        );
        let instance = Instance::new(&mut store, &module, &[hook.into()]).unwrap();
        let f = instance
            .get_typed_func::<i32, i32>(&mut store, "f")
            .unwrap();
        let value = f.call(&mut store, 12).unwrap();
        (value, store.into_data())
    };
    assert_eq!(calls(&original), calls(&rewritten));
}

#[test]
fn functions_it_cannot_copy_exactly_are_left_alone() {
    let none = |wat: &str| inline_recursion(&wat::parse_str(wat).unwrap()).unwrap();
    // No call of itself.
    assert!(none("(module (func (param i32) (result i32) (local.get 0)))").is_none());
    // A tail call of itself: its frame is replaced, not nested.
    assert!(
        none(
            "(module (func $t (param i32) (result i32)
               (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))
                 (else (return_call $t (i32.sub (local.get 0) (i32.const 1)))))))"
        )
        .is_none()
    );
    // A reference-typed local has no zero to start the copy's at here.
    assert!(
        none(
            "(module (func $r (param i32) (result i32) (local externref)
               (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))
                 (else (call $r (i32.sub (local.get 0) (i32.const 1)))))))"
        )
        .is_none()
    );
    // Too large.
    let mut big = String::from("(module (func $b (param i32) (result i32)");
    for _ in 0..(MAX_BODY_BYTES / 4) {
        big += " (drop (i32.const 1000))";
    }
    big += " (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0)) (else (call $b (i32.sub (local.get 0) (i32.const 1)))))))";
    assert!(none(&big).is_none());
    // More calls of itself than copies are made for.
    let mut many = String::from(
        "(module (func $m (param i32) (result i32) (if (i32.eqz (local.get 0)) (then (return (i32.const 0))))",
    );
    for _ in 0..=MAX_SELF_CALLS {
        many += " (drop (call $m (i32.sub (local.get 0) (i32.const 1))))";
    }
    many += " (i32.const 1)))";
    assert!(none(&many).is_none());
    // A component is not a core module.
    assert!(none("(component)").is_none());
}

#[test]
fn a_module_that_does_not_parse_is_an_error() {
    assert!(inline_recursion(b"\0asm\x01\0\0\0\x0a\xff").is_err());
}

#[test]
fn a_body_goes_only_as_deep_as_its_grown_size_allows() {
    // Four calls of a body of about 140 bytes: a level of 4 copies fits
    // the bound, a second of 16 more does not.
    let mut wat = String::from(
        "(module (func $w (export \"f\") (param i32) (result i32) (local i32)
           (if (i32.le_s (local.get 0) (i32.const 0)) (then (return (i32.const 1))))",
    );
    wat += &" (drop (i32.const 100000))".repeat(10);
    for i in 0..4 {
        wat += &format!(
            " (local.set 1 (i32.add (local.get 1) (i32.mul (i32.const {}) (call $w (i32.sub (local.get 0) (i32.const {}))))))",
            i + 3,
            i + 1
        );
    }
    wat += " (i32.add (local.get 1) (i32.const 12345678)) (i32.xor (i32.const 87654321)) (i32.rotl (i32.const 7))))";
    let (original, rewritten) = both(&wat);
    assert_eq!(self_calls(&original, 0), [4]);
    assert_eq!(
        self_calls(&rewritten, 0),
        [16],
        "one level: 4 copies of 4 calls"
    );
    for n in -1..9 {
        let args = [Val::I32(n)];
        assert_eq!(
            run(&original, "f", &args),
            run(&rewritten, "f", &args),
            "w({n})"
        );
    }
}

#[test]
fn what_starts_each_copy_counts_against_the_bound() {
    // A tiny body with 4 calls of itself and 499 vector locals: each copy
    // would start with 499 zeroings of 21 bytes.
    let wat = format!(
        "(module (func $f (local {}) call $f call $f call $f call $f))",
        "v128 ".repeat(499)
    );
    assert!(
        inline_recursion(&wat::parse_str(wat).unwrap())
            .unwrap()
            .is_none()
    );
}

#[test]
fn the_copies_add_a_bounded_amount_of_code_to_a_module() {
    // Each function adds about 1,900 bytes; 3,000 of them would add more
    // than the module's bound, so only the first ones are inlined.
    let mut wat = String::from("(module");
    for i in 0..3000 {
        wat += &format!(
            " (func $f{i} (param i32) (result i32)
               (if (i32.le_s (local.get 0) (i32.const 0)) (then (return (i32.const {i}))))
               (drop (i32.const 100000)) (drop (i32.const 100000)) (drop (i32.const 100000))
               (drop (i32.const 100000)) (drop (i32.const 100000)) (drop (i32.const 100000))
               (i32.add (i32.add (call $f{i} (i32.sub (local.get 0) (i32.const 1)))
                                 (call $f{i} (i32.sub (local.get 0) (i32.const 2))))
                        (i32.add (call $f{i} (i32.sub (local.get 0) (i32.const 3)))
                                 (call $f{i} (i32.sub (local.get 0) (i32.const 4))))))"
        );
    }
    wat += ")";
    let original = wat::parse_str(wat).unwrap();
    let rewritten = inline_recursion(&original).unwrap().unwrap();
    let added = rewritten.len() - original.len();
    assert!(added > MAX_ADDED_BYTES / 2, "added {added}");
    assert!(added <= MAX_ADDED_BYTES, "added {added}");
    assert!(self_calls(&rewritten, 0)[0] > 4, "the first is inlined");
    assert_eq!(self_calls(&rewritten, 2999), [4], "the last is not");
}

#[test]
fn an_invalid_local_index_is_left_for_the_compiler_to_refuse() {
    let wat = "(module (func $f (param i32) (result i32)
                 (if (result i32) (i32.eqz (local.get 0)) (then (local.get 7))
                   (else (call $f (i32.sub (local.get 0) (i32.const 1)))))))";
    let wasm = wat::parse_str(wat).unwrap();
    assert!(inline_recursion(&wasm).unwrap().is_none());
}

/// Random recursive functions, each a deterministic function of a seed:
/// `$f (n i32, x i64) -> i64` that stops at `n <= 0` and otherwise runs
/// statements over locals of three types, nested `if`s, blocks with
/// branches out of them (to the function's label too, with a value),
/// bounded loops, stores, early returns, and up to three calls of itself
/// with a smaller `n`, in expressions and inside loops.
struct Generator {
    state: u64,
    calls_left: u32,
}

impl Generator {
    fn new(seed: u64) -> Self {
        Self {
            state: seed | 1,
            calls_left: 1 + (seed % 3) as u32,
        }
    }

    fn below(&mut self, n: u64) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        (self.state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) % n
    }

    fn function(&mut self) -> String {
        let mut body = String::new();
        for _ in 0..1 + self.below(4) {
            body += &self.statement(1);
        }
        format!(
            r#"(module
  (memory (export "memory") 1)
  (func $f (export "f") (param $n i32) (param $x i64) (result i64)
    (local $a i64) (local $b f64) (local $i i32) (local $v v128)
    (if (i32.le_s (local.get $n) (i32.const 0))
      (then (return (i64.add (local.get $x) (i64.const {})))))
    {body}
    (i64.add (i64.add (local.get $a) (i64.trunc_sat_f64_s (local.get $b)))
             (i64x2.extract_lane 1 (local.get $v)))))"#,
            self.below(100)
        )
    }

    /// A statement at `depth` labels inside the function's (1: directly in
    /// the body), leaving the stack as it found it.
    fn statement(&mut self, depth: u32) -> String {
        let nested = depth < 3;
        match self.below(if nested { 9 } else { 5 }) {
            0 => format!("(local.set $a (i64.add (local.get $a) {}))", self.expr(2)),
            1 => format!(
                "(local.set $b (f64.add (f64.mul (local.get $b) (f64.const 0.5)) (f64.convert_i64_s {})))",
                self.expr(2)
            ),
            2 => format!(
                "(i64.store (i32.shl (i32.and (local.get $n) (i32.const 7)) (i32.const 3)) {})",
                self.expr(2)
            ),
            3 => format!(
                "(local.set $v (i64x2.add (local.get $v) (i64x2.splat {})))",
                self.expr(1)
            ),
            4 => format!(
                "(if (i32.eqz (i32.and (local.get $n) (i32.const {}))) (then (return {})))",
                1 + self.below(3),
                self.expr(2)
            ),
            5 => format!(
                "(if {} (then {}) (else {}))",
                self.condition(),
                self.statement(depth + 1),
                self.statement(depth + 1)
            ),
            6 => {
                // Out of the block, or out of the function with a value.
                let leave = if self.below(2) == 0 {
                    "(br_if 0 (i32.and (local.get $n) (i32.const 2)))".to_string()
                } else {
                    format!(
                        "(drop (br_if {depth} {} (i32.eq (local.get $n) (i32.const 2))))",
                        self.expr(1)
                    )
                };
                format!(
                    "(block {} {leave} {})",
                    self.statement(depth + 1),
                    self.statement(depth + 1)
                )
            }
            7 => format!(
                "(local.set $i (i32.const 0))
                 (loop {} (local.set $i (i32.add (local.get $i) (i32.const 1)))
                   (br_if 0 (i32.lt_u (local.get $i) (i32.const 2))))",
                self.statement(depth + 1)
            ),
            _ => format!(
                "(local.set $a (i64.xor (local.get $a) (i64.load (i32.const {}))))",
                8 * self.below(8)
            ),
        }
    }

    fn condition(&mut self) -> String {
        match self.below(3) {
            0 => format!("(i64.lt_s {} {})", self.expr(1), self.expr(1)),
            1 => "(i32.and (local.get $n) (i32.const 1))".to_string(),
            _ => "(f64.gt (local.get $b) (f64.const 3))".to_string(),
        }
    }

    fn expr(&mut self, depth: u32) -> String {
        if depth == 0 {
            return match self.below(4) {
                0 => "(local.get $a)".to_string(),
                1 => "(local.get $x)".to_string(),
                2 => "(i64.extend_i32_s (local.get $n))".to_string(),
                _ => format!("(i64.const {})", self.below(1000) as i64 - 500),
            };
        }
        match self.below(6) {
            0 if self.calls_left > 0 => {
                self.calls_left -= 1;
                format!(
                    "(call $f (i32.sub (local.get $n) (i32.const {})) {})",
                    1 + self.below(2),
                    self.expr(depth - 1)
                )
            }
            1 => format!(
                "(i64.add {} {})",
                self.expr(depth - 1),
                self.expr(depth - 1)
            ),
            2 => format!(
                "(i64.mul {} {})",
                self.expr(depth - 1),
                self.expr(depth - 1)
            ),
            3 => format!(
                "(i64.xor {} {})",
                self.expr(depth - 1),
                self.expr(depth - 1)
            ),
            _ => self.expr(0),
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn random_recursive_functions_behave_the_same_inlined(seed in proptest::prelude::any::<u64>()) {
        let wat = Generator::new(seed).function();
        let original = wat::parse_str(&wat).unwrap();
        let Some(rewritten) = inline_recursion(&original).unwrap() else {
            // No call of itself was generated.
            return Ok(());
        };
        wasmparser::Validator::new().validate_all(&rewritten).unwrap();
        for n in 0..6 {
            for x in [0i64, 7] {
                let args = [Val::I32(n), Val::I64(x)];
                proptest::prop_assert_eq!(
                    run(&original, "f", &args),
                    run(&rewritten, "f", &args),
                    "f({}, {}) of\n{}", n, x, wat
                );
            }
        }
    }
}

#[test]
fn the_generator_makes_functions_that_are_inlined() {
    let inlined = (0..64u64)
        .filter(|&seed| {
            let wasm = wat::parse_str(Generator::new(seed).function()).unwrap();
            inline_recursion(&wasm).unwrap().is_some()
        })
        .count();
    assert!(inlined > 32, "only {inlined} of 64 were inlined");
}
