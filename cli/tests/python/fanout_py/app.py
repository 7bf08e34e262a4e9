"""Function `fanout-py`: the Python twin of fn_fanout.c, as a component.

Input N; calls the function `square` for 1..N at once, awaits them all, and
outputs the sum of the squares, what the shared state says, and the typed
errors of a call to an unknown function and of awaiting twice.
"""
import wit_world
from wit_world.imports import chain, state
from componentize_py_types import Err


class WitWorld(wit_world.WitWorld):
    def run(self) -> None:
        n = int(chain.input().decode() or "0")
        calls = [chain.call("square", str(i).encode()) for i in range(1, n + 1)]
        if any(code != 0 for code in chain.await_all(calls)):
            raise Err(None)
        total = sum(int(chain.output(call).decode()) for call in calls)
        # A C `long`: 4 bytes on wasm32.
        largest = int.from_bytes(state.get("largest")[:4], "little", signed=True)
        state.set("python-was-here", b"yes")
        state.push("python-was-here")
        try:
            chain.call("no-such-function", b"")
            unknown = "no error"
        except Err as e:
            unknown = e.value.name
        try:
            chain.await_(calls[0])
            again = "no error"
        except Err as e:
            again = e.value.name
        report = (
            f"python: sum of squares 1..{n}: {total}; largest seen: {largest}; "
            f"unknown: {unknown}; await again: {again}\n"
        )
        chain.set_output(report.encode())
