"""tfattncut.serving.admission: a call's deadline and cancellation, and the memory budget
that requests in flight share (waiting for room, refusing what never fits, measurements
that hold it alone)."""
import concurrent.futures
import threading
import time

import grpc
import tensorflow as tf

from tfattncut.serving import admission
from tfattncut.serving.validation import ServingError

MIB = 1 << 20


class CallTest(tf.test.TestCase):

    def test_a_call_whose_client_has_gone_stops_at_the_next_stage(self):
        admission.NO_DEADLINE.check("decoding")  # no deadline, never cancelled
        admission.Call.within(60).check("decoding")
        cases = [(admission.Call(deadline=time.monotonic() - 1), "DEADLINE_EXCEEDED",
                  "deadline passed before decoding"),
                 (admission.Call(cancelled=lambda: True), "CANCELLED",
                  "cancelled the request before decoding")]
        for call, code, message in cases:
            with self.subTest(code):
                with self.assertRaisesRegex(ServingError, message) as raised:
                    call.check("decoding")
                self.assertEqual(raised.exception.code, getattr(grpc.StatusCode, code))

    def test_waiting_for_a_result_ends_when_the_client_goes(self):
        gone = threading.Event()
        call = admission.Call(cancelled=gone.is_set)
        never = concurrent.futures.Future()
        threading.Timer(0.3, gone.set).start()
        with self.assertRaisesRegex(ServingError, "cancelled the request before its batch ran"):
            call.wait(never, "its batch ran")
        done = concurrent.futures.Future()
        done.set_result(7)
        self.assertEqual(admission.Call.within(60).wait(done, "x"), 7)


class MemoryBudgetTest(tf.test.TestCase):

    def test_requests_share_the_budget_and_one_waits_for_room(self):
        budget = admission.MemoryBudget(10 * MIB)
        order = []
        with budget.admit(6 * MIB):
            self.assertEqual(budget.in_use, 6 * MIB)
            with budget.admit(4 * MIB):  # fits beside the first
                self.assertEqual(budget.in_use, 10 * MIB)

            def second():
                with budget.admit(5 * MIB, admission.Call.within(60)):
                    order.append("second admitted")

            thread = threading.Thread(target=second)
            thread.start()
            thread.join(0.5)
            order.append("first done")  # the second cannot be admitted before this
        thread.join(60)
        self.assertEqual(order, ["first done", "second admitted"])
        self.assertEqual(budget.in_use, 0)

    def test_what_never_fits_is_refused_at_once_and_a_wait_ends_with_the_deadline(self):
        budget = admission.MemoryBudget(10 * MIB)
        with self.assertRaisesRegex(ServingError, r"needs about 11\.0 MiB of memory, more "
                                                  r"than the whole in-flight budget of 10\.0 MiB "
                                                  r"\(--max_inflight_memory_mb\)") as raised:
            with budget.admit(11 * MIB):
                pass
        self.assertEqual((raised.exception.code, raised.exception.http_status),
                         (grpc.StatusCode.RESOURCE_EXHAUSTED, 413))
        self.assertTrue(budget.try_take(8 * MIB))
        with self.assertRaisesRegex(ServingError, r"requests in flight hold 8\.0 MiB of the "
                                                  r"10\.0 MiB budget") as raised:
            with budget.admit(4 * MIB, admission.Call.within(0.3)):
                pass
        self.assertEqual(raised.exception.http_status, 429)
        gone = admission.Call(cancelled=lambda: True)
        with self.assertRaisesRegex(ServingError, "cancelled the request before it was "
                                                  "admitted"):
            with budget.admit(4 * MIB, gone):
                pass
        budget.give_back(8 * MIB)
        self.assertEqual(budget.in_use, 0)

    def test_a_measurement_waits_for_the_requests_in_flight_and_holds_the_budget_alone(self):
        budget = admission.MemoryBudget(10 * MIB)
        events = []
        self.assertTrue(budget.try_take(MIB))

        def measure():
            with budget.exclusive():
                events.append("measuring")
                events.append(("admitted meanwhile", budget.try_take(MIB)))

        thread = threading.Thread(target=measure)
        thread.start()
        thread.join(0.3)
        events.append("request done")
        budget.give_back(MIB)
        thread.join(60)
        self.assertEqual(events, ["request done", "measuring", ("admitted meanwhile", False)])
        self.assertTrue(budget.try_take(MIB))

    def test_a_budget_must_be_positive(self):
        with self.assertRaisesRegex(ValueError, "--max_inflight_memory_mb must be positive"):
            admission.MemoryBudget(0)
