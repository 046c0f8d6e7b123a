"""gRPC-Web over plain HTTP/1.1 for tests: the framing browsers' libraries speak to Envoy."""

import struct
import urllib.parse

import httpx

HEADERS = {
    "content-type": "application/grpc-web+proto",
    "accept": "application/grpc-web+proto",
    "x-grpc-web": "1",
}
TRAILER_FLAG = 0x80


def frame(payload: bytes) -> bytes:
    return struct.pack(">BI", 0, len(payload)) + payload


class FrameReader:
    """Splits a gRPC-Web body, fed in pieces, into messages and trailers."""

    def __init__(self) -> None:
        self._buffer = b""
        self.messages: list[bytes] = []
        self.trailers: dict[str, str] = {}

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= 5:
            flag, length = struct.unpack(">BI", self._buffer[:5])
            if len(self._buffer) < 5 + length:
                return
            payload, self._buffer = self._buffer[5 : 5 + length], self._buffer[5 + length :]
            if flag & TRAILER_FLAG:
                for line in payload.decode().split("\r\n"):
                    if ":" in line:
                        key, value = line.split(":", 1)
                        self.trailers[key.strip().lower()] = value.strip()
            else:
                self.messages.append(payload)


def status(response: httpx.Response, reader: FrameReader) -> tuple[int, str]:
    """(grpc-status, grpc-message) from the trailers, or the headers of a trailers-only reply."""
    fields = reader.trailers or response.headers
    return int(fields.get("grpc-status", "-1")), urllib.parse.unquote(
        fields.get("grpc-message", "")
    )


def unary(
    url: str, request: bytes, timeout_s: float = 120, token: str = ""
) -> tuple[list[bytes], int, str]:
    """Calls a unary method (or a streaming one that ends at once); returns (response
    messages, grpc-status, grpc-message)."""
    headers = HEADERS | ({"authorization": f"Bearer {token}"} if token else {})
    response = httpx.post(url, content=frame(request), headers=headers, timeout=timeout_s)
    assert response.status_code == 200, response.text
    reader = FrameReader()
    reader.feed(response.content)
    return reader.messages, *status(response, reader)
