"""Helpers shared by the RCA run and panel tests."""
from __future__ import annotations

import queue
import threading

from zentro.incidents import rca


class Stepper:
    """Executor running each RCA in a thread that stops before every stage until released."""

    def __init__(self) -> None:
        self.arrived: queue.Queue[str] = queue.Queue()
        self.go = threading.Semaphore(0)
        self.free = threading.Event()
        self.threads: list[threading.Thread] = []

    def submit(self, app, run_id: int) -> None:
        t = threading.Thread(target=rca.execute_run, args=(app, run_id), kwargs={"gate": self._gate}, daemon=True)
        self.threads.append(t)
        t.start()

    def _gate(self, stage: str) -> None:
        self.arrived.put(stage)
        if not self.free.is_set():
            self.go.acquire()

    def next_stage(self) -> str:
        return self.arrived.get(timeout=30)  # a safety net against a hung worker, not a wait for time to pass

    def release(self) -> None:
        self.go.release()

    def finish(self) -> None:
        self.free.set()
        for _ in range(len(rca.STAGES) * (len(self.threads) + 1)):
            self.go.release()
        for t in self.threads:
            t.join(timeout=30)
            assert not t.is_alive()
