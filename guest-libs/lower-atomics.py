#!/usr/bin/env python3
"""Turns the atomic instructions of one LLVM IR file into calls of
libweft's __weft_atomic_* functions (src/chain_atomic.c), in place.

In local mode those calls make the same atomic operation. In chain mode
each thread runs on its own copy of memory, where a wasm atomic would act
on that copy only; the calls make the operation under a home-kept lock of
its address instead, a sync point of release consistency, so atomics from
every thread act on one value. Only the program's own code is rewritten
(weft-cc runs this on each source it compiles through IR); libc's and
libweft's atomics stay native.

Rewritten: atomicrmw (xchg, add, sub, and, nand, or, xor, max, min, umax,
umin, fadd, fsub, fmax, fmin) and cmpxchg on i8..i64, float, double and
ptr; load atomic and store atomic; fence; and the wait and notify
intrinsics (__builtin_wasm_memory_atomic_wait32/64 and _notify), which
chain mode turns into waits at home. Single-thread scopes and operations
on other types are left as they are.
"""
import re
import sys

RMW_OPS = {
    "xchg": 0, "add": 1, "sub": 2, "and": 3, "nand": 4, "or": 5, "xor": 6,
    "max": 7, "min": 8, "umax": 9, "umin": 10,
    "fadd": 11, "fsub": 12, "fmax": 13, "fmin": 14,
}
INT_BYTES = {"i8": 1, "i16": 2, "i32": 4}
ORDERINGS = {"unordered", "monotonic", "acquire", "release", "acq_rel", "seq_cst"}

DECLARATIONS = {
    "rmw32": "declare i32 @__weft_atomic_rmw32(i32, i32, ptr, i32)",
    "rmw64": "declare i64 @__weft_atomic_rmw64(i32, ptr, i64)",
    "rmwf32": "declare float @__weft_atomic_rmwf32(i32, ptr, float)",
    "rmwf64": "declare double @__weft_atomic_rmwf64(i32, ptr, double)",
    "cas32": "declare i32 @__weft_atomic_cas32(i32, ptr, i32, i32)",
    "cas64": "declare i64 @__weft_atomic_cas64(ptr, i64, i64)",
    "load32": "declare i32 @__weft_atomic_load32(i32, ptr)",
    "load64": "declare i64 @__weft_atomic_load64(ptr)",
    "store32": "declare void @__weft_atomic_store32(i32, ptr, i32)",
    "store64": "declare void @__weft_atomic_store64(ptr, i64)",
    "fence": "declare void @__weft_atomic_fence()",
    "wait32": "declare i32 @__weft_atomic_wait32(ptr, i32, i64)",
    "wait64": "declare i32 @__weft_atomic_wait64(ptr, i64, i64)",
    "notify": "declare i32 @__weft_atomic_notify(ptr, i32)",
}

# The wait and notify intrinsics, by the libweft function each becomes.
# Their declarations go (the replacements are declared without the
# intrinsics' memory attributes: a sync point may change any memory).
INTRINSICS = {
    "wait32": "@llvm.wasm.memory.atomic.wait32(",
    "wait64": "@llvm.wasm.memory.atomic.wait64(",
    "notify": "@llvm.wasm.memory.atomic.notify(",
}


def split_top(text):
    """Splits at commas outside (), [], {} and <>."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def typed(operand):
    """'i32 %x' -> ('i32', '%x'); 'ptr getelementptr (...)' likewise."""
    ty, _, value = operand.partition(" ")
    return ty, value.strip()


class Lowering:
    def __init__(self):
        self.used = set()
        self.counter = 0

    def temp(self):
        self.counter += 1
        return f"%__weft_atomic.{self.counter}"

    def to_word(self, ty, value, out):
        """`value` of `ty` as an i32 or i64 operand for a call."""
        if ty in ("i32", "i64"):
            return value
        if ty in INT_BYTES:
            t = self.temp()
            out.append(f"{t} = zext {ty} {value} to i32")
            return t
        t = self.temp()
        if ty == "float":
            out.append(f"{t} = bitcast float {value} to i32")
        elif ty == "double":
            out.append(f"{t} = bitcast double {value} to i64")
        else:  # ptr
            out.append(f"{t} = ptrtoint ptr {value} to i32")
        return t

    def from_word(self, ty, word, result, out):
        """Assigns `word` (i32 or i64) back as `ty` to `result`."""
        if ty in ("i32", "i64"):
            out.append(f"{result} = add {ty} {word}, 0")
        elif ty in INT_BYTES:
            out.append(f"{result} = trunc i32 {word} to {ty}")
        elif ty == "float":
            out.append(f"{result} = bitcast i32 {word} to float")
        elif ty == "double":
            out.append(f"{result} = bitcast i64 {word} to double")
        else:
            out.append(f"{result} = inttoptr i32 {word} to ptr")

    @staticmethod
    def word_type(ty):
        return "i64" if ty in ("i64", "double") else "i32"

    @staticmethod
    def supported(ty):
        return ty in INT_BYTES or ty in ("i64", "float", "double", "ptr")

    def rmw(self, result, op, ptr, ty, value):
        code = RMW_OPS[op]
        out = []
        if ty in ("float", "double"):
            name = "rmwf32" if ty == "float" else "rmwf64"
            self.used.add(name)
            call = f"call {ty} @__weft_atomic_{name}(i32 {code}, ptr {ptr}, {ty} {value})"
            out.append(f"{result} = {call}" if result else call)
            return out
        word = self.to_word(ty, value, out)
        if self.word_type(ty) == "i64":
            self.used.add("rmw64")
            call = f"call i64 @__weft_atomic_rmw64(i32 {code}, ptr {ptr}, i64 {word})"
        else:
            self.used.add("rmw32")
            size = INT_BYTES.get(ty, 4)
            call = f"call i32 @__weft_atomic_rmw32(i32 {code}, i32 {size}, ptr {ptr}, i32 {word})"
        old = self.temp()
        out.append(f"{old} = {call}")
        if result:
            self.from_word(ty, old, result, out)
        return out

    def cas(self, result, ptr, ty, expected, new):
        out = []
        e = self.to_word(ty, expected, out)
        n = self.to_word(ty, new, out)
        wt = self.word_type(ty)
        old = self.temp()
        if wt == "i64":
            self.used.add("cas64")
            out.append(f"{old} = call i64 @__weft_atomic_cas64(ptr {ptr}, i64 {e}, i64 {n})")
        else:
            self.used.add("cas32")
            size = INT_BYTES.get(ty, 4)
            out.append(
                f"{old} = call i32 @__weft_atomic_cas32(i32 {size}, ptr {ptr}, i32 {e}, i32 {n})")
        if result:
            same = self.temp()
            out.append(f"{same} = icmp eq {wt} {old}, {e}")
            value = self.temp()
            self.from_word(ty, old, value, out)
            pair = self.temp()
            out.append(f"{pair} = insertvalue {{ {ty}, i1 }} poison, {ty} {value}, 0")
            out.append(f"{result} = insertvalue {{ {ty}, i1 }} {pair}, i1 {same}, 1")
        return out

    def load(self, result, ty, ptr):
        out = []
        word = self.temp()
        if self.word_type(ty) == "i64":
            self.used.add("load64")
            out.append(f"{word} = call i64 @__weft_atomic_load64(ptr {ptr})")
        else:
            self.used.add("load32")
            size = INT_BYTES.get(ty, 4)
            out.append(f"{word} = call i32 @__weft_atomic_load32(i32 {size}, ptr {ptr})")
        self.from_word(ty, word, result, out)
        return out

    def store(self, ty, value, ptr):
        out = []
        word = self.to_word(ty, value, out)
        if self.word_type(ty) == "i64":
            self.used.add("store64")
            out.append(f"call void @__weft_atomic_store64(ptr {ptr}, i64 {word})")
        else:
            self.used.add("store32")
            size = INT_BYTES.get(ty, 4)
            out.append(f"call void @__weft_atomic_store32(i32 {size}, ptr {ptr}, i32 {word})")
        return out


def strip_attachments(parts):
    """Drops `align N` and metadata attachments (`!tbaa !7`) after the
    operands."""
    return [p for p in parts if not p.startswith("align ") and not p.startswith("!")]


def words_of(text):
    return text.split()


def without_ordering(text):
    """'i32 %v seq_cst' -> 'i32 %v'; None when it does not end in one."""
    rest, _, ordering = text.rpartition(" ")
    return rest if ordering in ORDERINGS and rest else None


def lower_line(line, lowering):
    """The rewritten lines for one instruction line, or None to keep it."""
    indent = line[: len(line) - len(line.lstrip())]
    body = line.strip()
    result = None
    m = re.match(r"(%[-\w.$]+|%\"[^\"]*\") = (.*)$", body)
    if m:
        result, body = m.group(1), m.group(2)
    if "syncscope(" in body:
        return None  # single-thread scopes need no lowering
    words = words_of(body)
    if not words:
        return None
    out = None
    if words[0] == "atomicrmw":
        rest = body[len("atomicrmw"):].strip()
        rest = re.sub(r"^volatile ", "", rest)
        op, _, rest = rest.partition(" ")
        parts = strip_attachments(split_top(rest))
        if op not in RMW_OPS or len(parts) != 2:
            return None
        _, ptr = typed(parts[0])
        operand = without_ordering(parts[1])
        if operand is None:
            return None
        ty, value = typed(operand)
        if not lowering.supported(ty):
            return None
        out = lowering.rmw(result, op, ptr, ty, value)
    elif words[0] == "cmpxchg":
        rest = body[len("cmpxchg"):].strip()
        rest = re.sub(r"^(weak )?(volatile )?", "", rest)
        parts = strip_attachments(split_top(rest))
        if len(parts) != 3:
            return None
        _, ptr = typed(parts[0])
        ty, expected = typed(parts[1])
        new_and_orders = parts[2].rsplit(" ", 2)
        if len(new_and_orders) != 3 or not set(new_and_orders[1:]) <= ORDERINGS:
            return None
        _, new = typed(new_and_orders[0])
        if not lowering.supported(ty):
            return None
        out = lowering.cas(result, ptr, ty, expected, new)
    elif words[0] == "load" and len(words) > 1 and words[1] == "atomic":
        rest = re.sub(r"^load atomic (volatile )?", "", body)
        parts = strip_attachments(split_top(rest))
        if len(parts) != 2 or not result:
            return None
        ty = parts[0]
        operand = without_ordering(parts[1])
        if operand is None:
            return None
        _, ptr = typed(operand)
        if not lowering.supported(ty):
            return None
        out = lowering.load(result, ty, ptr)
    elif words[0] == "store" and len(words) > 1 and words[1] == "atomic":
        rest = re.sub(r"^store atomic (volatile )?", "", body)
        parts = strip_attachments(split_top(rest))
        if len(parts) != 2:
            return None
        ty, value = typed(parts[0])
        operand = without_ordering(parts[1])
        if operand is None:
            return None
        _, ptr = typed(operand)
        if not lowering.supported(ty):
            return None
        out = lowering.store(ty, value, ptr)
    elif words[0] == "fence" and len(words) == 2 and words[1] in ORDERINGS:
        lowering.used.add("fence")
        out = ["call void @__weft_atomic_fence()"]
    if out is None:
        return None
    return [indent + o for o in out]


def lower(text):
    lowering = Lowering()
    lines = []
    in_function = False
    for line in text.split("\n"):
        if line.startswith("define "):
            in_function = True
        elif line.startswith("}"):
            in_function = False
        if line.startswith("declare ") and any(i in line for i in INTRINSICS.values()):
            continue
        lowered = lower_line(line, lowering) if in_function else None
        if lowered is None and in_function:
            for name, intrinsic in INTRINSICS.items():
                if intrinsic in line:
                    line = line.replace(intrinsic, f"@__weft_atomic_{name}(")
                    lowering.used.add(name)
        lines.extend(lowered if lowered is not None else [line])
    for name in sorted(lowering.used):
        lines.append(DECLARATIONS[name])
    return "\n".join(lines) + "\n"


def main():
    path = sys.argv[1]
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(lower(text))


if __name__ == "__main__":
    main()
