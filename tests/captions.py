"""A caption room listener for synchronous tests."""

import threading
import time

import grpc

from dragoman.api.speech.v1 import speech_pb2, speech_pb2_grpc


class Listener:
    """StreamCaptions on a thread, collecting captions until it is stopped or fails."""

    def __init__(
        self, stub: speech_pb2_grpc.SpeechServiceStub, room: str, language: str, after: str = ""
    ) -> None:
        self.captions: list[speech_pb2.StreamCaptionsResponse] = []
        self.error: grpc.RpcError | None = None
        self._call = stub.StreamCaptions(
            speech_pb2.StreamCaptionsRequest(room=room, language_code=language, resume_after=after),
            timeout=300,
        )
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        try:
            for caption in self._call:
                self.captions.append(caption)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                self.error = error

    def wait_for(
        self, count: int, timeout_s: float = 60
    ) -> list[speech_pb2.StreamCaptionsResponse]:
        deadline = time.monotonic() + timeout_s
        while len(self.captions) < count and self.error is None:
            assert time.monotonic() < deadline, f"{len(self.captions)} of {count} captions"
            time.sleep(0.05)
        return self.captions

    def wait_failed(self, timeout_s: float = 30) -> grpc.RpcError:
        self._thread.join(timeout_s)
        assert self.error is not None, "the listener did not fail"
        return self.error

    def stop(self) -> None:
        self._call.cancel()
        self._thread.join(10)
