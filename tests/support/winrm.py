"""A local WinRM endpoint that answers the WS-Management / PSRP exchange pypsrp sends for one pipeline.

The runner's real transport is exercised end to end (requests, WSMan envelopes, PSRP fragments,
the session key exchange), over either

- HTTPS with a trustme certificate and NTLM (pyspnego's acceptor; the channel binding of the TLS
  certificate is checked): the production configuration, or
- HTTPS or plain HTTP with Kerberos (pyspnego's Negotiate acceptor, keys from the keytab named by
  KRB5_KTNAME, a real KDC's tickets; over HTTPS the channel binding is checked, over HTTP every
  message is wrapped with the Kerberos session key the way WinRM does: multipart/encrypted,
  application/HTTP-SPNEGO-session-encrypted, through pypsrp's own WinRMEncryption), or
- plain HTTP with Basic authentication (pypsrp allows it with message encryption off): quicker to
  drive from tests that are about the PSRP exchange, not the connection.

The exchange, as pypsrp sends it:

    Create (Shell + creationXml: SESSION_CAPABILITY, INIT_RUNSPACEPOOL)
    Receive              -> SESSION_CAPABILITY, APPLICATION_PRIVATE_DATA, RUNSPACEPOOL_STATE Opened
    Send (PUBLIC_KEY)    -> queued ENCRYPTED_SESSION_KEY, fetched by the next Receive
    Command (CREATE_PIPELINE) -> CommandId
    Receive (CommandId)  -> PIPELINE_OUTPUT (the scripted answer), ERROR_RECORD..., PIPELINE_STATE
    Signal (terminate), Delete

Replies are built with pypsrp's own Message, Fragment and Serializer classes. Every received
pipeline is kept (script text and bound parameters, SecureStrings decrypted with the session key)
for the tests to inspect, and every request body is kept raw so a test can look for secrets in
what went over the wire.
"""

from __future__ import annotations

import base64
import hashlib
import os
import ssl
import struct
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import spnego
import trustme
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pypsrp.complex_objects import PSCredential
from pypsrp.encryption import WinRMEncryption
from pypsrp.messages import (
    ApplicationPrivateData,
    Destination,
    EncryptedSessionKey,
    ErrorRecordMessage,
    Message,
    MessageType,
    PipelineOutput,
    PipelineState,
    RunspacePoolStateMessage,
    SessionCapability,
)
from pypsrp.powershell import Fragment
from pypsrp.serializer import Serializer
from pypsrp.wsman import NAMESPACES, WSManAction
from spnego.channel_bindings import GssChannelBindings
from spnego.exceptions import SpnegoError

NS = NAMESPACES
RUNSPACE_OPENED = 2
PIPELINE_COMPLETED = 4
PIPELINE_FAILED = 5
DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
PSRP_HEADER = 40  # destination, message type, runspace pool id, pipeline id


@dataclass(frozen=True)
class Answer:
    """What the fake host returns for one pipeline: output strings and error records (their text)."""

    output: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    delay_seconds: float = 0.0  # each Receive on the pipeline waits this long (for timeouts)
    running_receives: int = 0  # this many Receives answer "still running" before the end


@dataclass
class ReceivedPipeline:
    script: str
    is_script: bool
    parameters: dict[str, Any]


@dataclass
class _Pipeline:
    rpid: str
    pid: str
    command_id: str
    answer: Answer
    receives: int = 0


@dataclass
class FakeWinRM:
    """State of the endpoint; ``answer`` decides each pipeline's reply from what was received."""

    username: str
    password: str
    ntlm: bool = False
    answer: Callable[[ReceivedPipeline], Answer] = field(default=lambda _: Answer())
    pipelines: list[ReceivedPipeline] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    resource_uris: list[str] = field(default_factory=list)  # which session configuration each pool opened
    bodies: list[bytes] = field(default_factory=list)
    max_running: int = 0  # most pipelines running at once
    fail_delete: bool = False  # the host fails to delete the shell (the call itself succeeded)
    kerberos: bool = False
    authenticated_as: list[str] = field(default_factory=list)  # NTLM/Kerberos: who each connection authenticated as
    wire: list[bytes] = field(default_factory=list)  # request bodies as they arrived (encrypted ones included)
    encrypted: int = 0  # requests that came wrapped with the Kerberos session key
    _pools: dict[str, list[bytes]] = field(default_factory=dict)
    _running: dict[str, _Pipeline] = field(default_factory=dict)
    _serializer: Serializer = field(default_factory=Serializer)
    _ciphers: dict[str, Cipher[modes.CBC]] = field(default_factory=dict)
    _object_id: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- PSRP messages ------------------------------------------------------------------------------

    def _message(self, rpid: str, pid: str | None, data: Any, raw: ET.Element | None = None) -> bytes:
        message = Message(Destination.CLIENT, rpid, pid, data, self._serializer)
        if raw is not None:
            message.data = raw  # type: ignore[assignment]  # pre-serialized (PIPELINE_OUTPUT carries bare objects)
        packed = message.pack()
        self._object_id += 1
        return Fragment(self._object_id, 0, packed, start=True, end=True).pack()

    def _error_record(self, text: str) -> ErrorRecordMessage:
        record = ErrorRecordMessage(
            fq_error="KerberosBotTest,Microsoft.AzureAD.Kdc",
            category=0,
            message=text,
            reason="Exception",
        )
        for name, _ in record._extended_properties:
            if not hasattr(record, name):
                setattr(record, name, None)
        record._to_string = text  # type: ignore[assignment]
        return record

    def _open_pool(self, rpid: str) -> list[bytes]:
        capability = SessionCapability(protocol_version="2.3", ps_version="2.0", serialization_version="1.1.0.1")
        private = ApplicationPrivateData(data={})
        return [
            self._message(rpid, None, capability),
            self._message(rpid, None, private),
            self._message(rpid, None, RunspacePoolStateMessage(state=RUNSPACE_OPENED)),
        ]

    def _pipeline_replies(self, pipeline: _Pipeline) -> list[bytes]:
        answer = pipeline.answer
        replies = [
            self._message(pipeline.rpid, pipeline.pid, PipelineOutput(), raw=self._serializer.serialize(text))
            for text in answer.output
        ]
        replies += [self._message(pipeline.rpid, pipeline.pid, self._error_record(text)) for text in answer.errors]
        state = PipelineState(state=PIPELINE_FAILED if answer.errors else PIPELINE_COMPLETED)
        replies.append(self._message(pipeline.rpid, pipeline.pid, state))
        return replies

    @staticmethod
    def _received_pipeline(fragment: bytes, cipher: Cipher[modes.CBC] | None) -> ReceivedPipeline:
        # Fragment header (21 bytes), then the PSRP message; CREATE_PIPELINE is read as XML because
        # pypsrp cannot deserialize its own HostInfo back.
        unpacked, rest = Fragment.unpack(fragment)
        assert rest == b"" and unpacked.start and unpacked.end, "one fragment expected for a small pipeline"
        data = unpacked.data
        message_type = struct.unpack("<I", data[4:8])[0]
        assert message_type == MessageType.CREATE_PIPELINE, hex(message_type)
        xml = ET.fromstring(data[PSRP_HEADER:].decode("utf-8").lstrip("\ufeff"))
        commands = xml.findall("./MS/Obj[@N='PowerShell']/MS/Obj[@N='Cmds']/LST/Obj")
        assert len(commands) == 1, "the runner sends exactly one command"
        command = commands[0]
        parameters: dict[str, Any] = {}
        reader = Serializer()
        reader.cipher = cipher  # SecureStrings decrypt with the pool's session key
        # type names are sent once per message and referenced after (TNRef), so learn them all first
        reader.tn = {tn.attrib["RefId"]: [t.text for t in tn] for tn in xml.iter("TN")}
        for arg in command.findall("MS/Obj[@N='Args']/LST/Obj"):
            name = arg.find("MS/S[@N='N']")
            value = arg.find("MS/*[@N='V']")
            assert name is not None and name.text, "every value is a named parameter"
            parameters[name.text] = _plain(reader.deserialize(value, clear=False)) if value is not None else None
        script = command.find("MS/S[@N='Cmd']")
        assert script is not None
        return ReceivedPipeline(
            script=Serializer().deserialize(script),  # PSRP escapes control characters (_x000A_)
            is_script=command.findtext("MS/B[@N='IsScript']") == "true",
            parameters=parameters,
        )

    # -- WS-Management ---------------------------------------------------------------------------------

    def handle(self, body: bytes) -> tuple[int, bytes]:
        request = ET.fromstring(body)
        action = request.findtext("s:Header/wsa:Action", namespaces=NS) or ""
        message_id = request.findtext("s:Header/wsa:MessageID", namespaces=NS) or ""
        resource_uri = request.findtext("s:Header/wsman:ResourceURI", namespaces=NS) or ""
        shell_id = request.findtext("s:Header/wsman:SelectorSet/wsman:Selector[@Name='ShellId']", namespaces=NS)
        with self._lock:
            self.actions.append(action.rsplit("/", 1)[-1])
            self.bodies.append(body)
            if action == WSManAction.CREATE:
                return 200, self._create(request, message_id, resource_uri)
            if action == WSManAction.RECEIVE:
                reply = self._receive(request, message_id)
                if reply is None:
                    return 500, _fault(message_id)
                return 200, reply
            if action == WSManAction.SEND:
                return 200, self._send_input(request, message_id, shell_id or "")
            if action == WSManAction.COMMAND:
                return 200, self._command(request, message_id, shell_id or "")
            if action == WSManAction.SIGNAL:
                command_id = request.find("s:Body/rsp:Signal", NS)
                if command_id is not None:
                    self._running.pop(command_id.attrib.get("CommandId", "").upper(), None)
                return 200, _envelope(
                    WSManAction.SIGNAL_RESPONSE, message_id, ET.Element(f"{{{NS['rsp']}}}SignalResponse")
                )
            if action == WSManAction.DELETE and self.fail_delete:
                return 500, b"WinRM went away"
            if action == WSManAction.DELETE:
                self._pools.pop((shell_id or "").upper(), None)
                return 200, _envelope(WSManAction.DELETE_RESPONSE, message_id, None)
        return 400, b"unexpected action " + action.encode()

    def _create(self, request: ET.Element, message_id: str, resource_uri: str) -> bytes:
        shell = request.find("s:Body/rsp:Shell", NS)
        assert shell is not None
        shell_id = shell.attrib["ShellId"].upper()
        creation = shell.findtext("pwsh:creationXml", namespaces=NS) or ""
        data = base64.b64decode(creation)
        types = []
        while data:
            fragment, data = Fragment.unpack(data)
            types.append(struct.unpack("<I", fragment.data[4:8])[0])
        assert types == [MessageType.SESSION_CAPABILITY, MessageType.INIT_RUNSPACEPOOL], types
        self._pools[shell_id] = self._open_pool(shell_id)
        self.resource_uris.append(resource_uri)
        rsp, wsa, wsman = NS["rsp"], NS["wsa"], NS["wsman"]
        body = ET.Element(f"{{{NS['wst']}}}ResourceCreated")
        ET.SubElement(body, f"{{{wsa}}}Address").text = "http://127.0.0.1/wsman"
        parameters = ET.SubElement(body, f"{{{wsa}}}ReferenceParameters")
        ET.SubElement(parameters, f"{{{wsman}}}ResourceURI").text = resource_uri
        selectors = ET.SubElement(parameters, f"{{{wsman}}}SelectorSet")
        ET.SubElement(selectors, f"{{{wsman}}}Selector", Name="ShellId").text = shell_id
        shell_reply = ET.Element(f"{{{rsp}}}Shell")
        ET.SubElement(shell_reply, f"{{{rsp}}}ShellId").text = shell_id
        ET.SubElement(shell_reply, f"{{{rsp}}}ResourceUri").text = resource_uri
        ET.SubElement(shell_reply, f"{{{rsp}}}Owner").text = self.username
        ET.SubElement(shell_reply, f"{{{rsp}}}InputStreams").text = "stdin pr"
        ET.SubElement(shell_reply, f"{{{rsp}}}OutputStreams").text = "stdout"
        return _envelope(WSManAction.CREATE_RESPONSE, message_id, body, shell_reply)

    def _send_input(self, request: ET.Element, message_id: str, shell_id: str) -> bytes:
        """The only input the runner sends to a pool: PUBLIC_KEY, answered by ENCRYPTED_SESSION_KEY."""
        stream = request.find("s:Body/rsp:Send/rsp:Stream", NS)
        assert stream is not None and stream.attrib.get("CommandId") is None
        fragment, rest = Fragment.unpack(base64.b64decode(stream.text or ""))
        assert rest == b"" and struct.unpack("<I", fragment.data[4:8])[0] == MessageType.PUBLIC_KEY
        xml = ET.fromstring(fragment.data[PSRP_HEADER:].decode("utf-8"))
        blob = base64.b64decode(xml.findtext("MS/S[@N='PublicKey']") or "")
        # MS-PSRP 2.2.2.3: a CAPI PUBLICKEYBLOB, exponent and modulus little-endian
        exponent = struct.unpack("<I", blob[16:20])[0]
        public = rsa.RSAPublicNumbers(exponent, int.from_bytes(blob[20:276], "little")).public_key()
        key = os.urandom(32)
        encrypted = public.encrypt(key, padding.PKCS1v15())
        # MS-PSRP 2.2.2.4: a CAPI SIMPLEBLOB (12-byte header, then the encrypted key reversed)
        simple_blob = b"\x01\x02\x00\x00\x10\x66\x00\x00\x00\xa4\x00\x00" + encrypted[::-1]
        self._ciphers[shell_id.upper()] = Cipher(algorithms.AES(key), modes.CBC(b"\x00" * 16))
        reply = EncryptedSessionKey(session_key=base64.b64encode(simple_blob).decode())
        self._pools[shell_id.upper()].append(self._message(shell_id.upper(), None, reply))
        return _envelope(WSManAction.SEND_RESPONSE, message_id, ET.Element(f"{{{NS['rsp']}}}SendResponse"))

    def _command(self, request: ET.Element, message_id: str, shell_id: str) -> bytes:
        line = request.find("s:Body/rsp:CommandLine", NS)
        assert line is not None
        command_id = line.attrib["CommandId"].upper()
        fragment = base64.b64decode(line.findtext("rsp:Arguments", namespaces=NS) or "")
        received = self._received_pipeline(fragment, self._ciphers.get(shell_id.upper()))
        self.pipelines.append(received)
        self._running[command_id] = _Pipeline(shell_id.upper(), command_id, command_id, self.answer(received))
        self.max_running = max(self.max_running, len(self._running))
        reply = ET.Element(f"{{{NS['rsp']}}}CommandResponse")
        ET.SubElement(reply, f"{{{NS['rsp']}}}CommandId").text = command_id
        return _envelope(WSManAction.COMMAND_RESPONSE, message_id, reply)

    def _receive(self, request: ET.Element, message_id: str) -> bytes | None:
        stream = request.find("s:Body/rsp:Receive/rsp:DesiredStream", NS)
        command_id = stream.attrib.get("CommandId") if stream is not None else None
        rsp = NS["rsp"]
        reply = ET.Element(f"{{{rsp}}}ReceiveResponse")
        if command_id is None:
            shell_id = request.findtext("s:Header/wsman:SelectorSet/wsman:Selector[@Name='ShellId']", namespaces=NS)
            chunks = self._pools.get((shell_id or "").upper(), [])
            payload = b"".join(chunks)
            chunks.clear()
            ET.SubElement(reply, f"{{{rsp}}}Stream", Name="stdout").text = base64.b64encode(payload).decode()
            return _envelope(WSManAction.RECEIVE_RESPONSE, message_id, reply)
        pipeline = self._running.get(command_id.upper())
        assert pipeline is not None, "Receive for an unknown command"
        pipeline.receives += 1
        if pipeline.answer.delay_seconds:
            self._lock.release()  # let other requests through while this one "runs"
            try:
                threading.Event().wait(pipeline.answer.delay_seconds)
            finally:
                self._lock.acquire()
        if pipeline.receives <= pipeline.answer.running_receives:
            return None  # the WSMan operation timeout fault: still running
        payload = b"".join(self._pipeline_replies(pipeline))
        ET.SubElement(reply, f"{{{rsp}}}Stream", Name="stdout", CommandId=command_id).text = base64.b64encode(
            payload
        ).decode()
        state = ET.SubElement(reply, f"{{{rsp}}}CommandState", CommandId=command_id, State=DONE)
        ET.SubElement(state, f"{{{rsp}}}ExitCode").text = "0"
        return _envelope(WSManAction.RECEIVE_RESPONSE, message_id, reply)


def _plain(value: Any) -> Any:
    """A deserialized PSCredential as (user, password); anything else as it is."""
    if isinstance(value, PSCredential):
        return (value.username, value.password)
    return value


def _envelope(action: str, relates_to: str, *body_elements: ET.Element | None) -> bytes:
    s, wsa = NS["s"], NS["wsa"]
    envelope = ET.Element(f"{{{s}}}Envelope")
    header = ET.SubElement(envelope, f"{{{s}}}Header")
    ET.SubElement(header, f"{{{wsa}}}Action").text = action
    ET.SubElement(header, f"{{{wsa}}}MessageID").text = f"uuid:{uuid.uuid4()}".upper()
    ET.SubElement(header, f"{{{wsa}}}RelatesTo").text = relates_to
    body = ET.SubElement(envelope, f"{{{s}}}Body")
    for element in body_elements:
        if element is not None:
            body.append(element)
    return bytes(ET.tostring(envelope, encoding="utf-8"))


def _fault(relates_to: str) -> bytes:
    """WSMan's OperationTimeout fault (2150858793): pypsrp's poll_invoke receives again."""
    s = NS["s"]
    fault = ET.Element(f"{{{s}}}Fault")
    code = ET.SubElement(fault, f"{{{s}}}Code")
    ET.SubElement(code, f"{{{s}}}Value").text = "s:Receiver"
    reason = ET.SubElement(fault, f"{{{s}}}Reason")
    ET.SubElement(
        reason, f"{{{s}}}Text"
    ).text = "The WS-Management service cannot complete the operation within the time specified in OperationTimeout."
    detail = ET.SubElement(fault, f"{{{s}}}Detail")
    ET.SubElement(detail, f"{{{NS['wsmanfault']}}}WSManFault", Code="2150858793", Machine="127.0.0.1")
    return _envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to, fault)


def _handler(state: FakeWinRM, bindings: GssChannelBindings | None) -> type[BaseHTTPRequestHandler]:
    def expected_basic() -> str:  # the account's password as the host holds it now (a test may rotate it)
        return "Basic " + base64.b64encode(f"{state.username}:{state.password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # NTLM and Kerberos authenticate the connection, so keep it open

        def setup(self) -> None:
            super().setup()
            self.authenticated = False
            self.ntlm: spnego.ContextProxy | None = None
            self.final_token: bytes | None = None  # Kerberos' AP-REP, sent with the first answer (mutual auth)

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest's output clean
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if not self._authenticate():
                return
            if self.path != "/wsman":
                self._send(404, b"")
                return
            state.wire.append(body)
            content_type = self.headers.get("Content-Type") or ""
            sealing: WinRMEncryption | None = None
            if content_type.startswith("multipart/encrypted"):
                assert self.ntlm is not None and state.kerberos, "only Kerberos seals messages here"
                sealing = WinRMEncryption(self.ntlm, WinRMEncryption.SPNEGO)
                body = sealing.unwrap_message(body, "Encrypted Boundary")
                with state._lock:
                    state.encrypted += 1
            if not body:  # pypsrp's empty first request, which only sets up the context for encryption
                self._send(200, b"")
                return
            status, reply = state.handle(body)
            if sealing is None:
                self._send(status, reply, {"Content-Type": "application/soap+xml;charset=UTF-8"})
                return
            kind, sealed = sealing.wrap_message(reply)
            self._send(
                status, sealed, {"Content-Type": f'{kind};protocol="{sealing.protocol}";boundary="Encrypted Boundary"'}
            )

        def _authenticate(self) -> bool:
            header = self.headers.get("Authorization") or ""
            if state.kerberos:
                return self._negotiate(header, "negotiate", ("Negotiate", "Kerberos"))
            if not state.ntlm:
                if header == expected_basic():
                    return True
                self._send(401, b"", {"WWW-Authenticate": 'Basic realm="WSMAN"'})
                return False
            return self._negotiate(header, "ntlm", ("Negotiate", "NTLM"))

        def _negotiate(self, header: str, protocol: str, schemes: tuple[str, ...]) -> bool:
            """One connection-based handshake: pyspnego's acceptor (NTLM, or Kerberos from KRB5_KTNAME's keys)."""
            if self.authenticated:
                return True
            scheme, _, token = header.partition(" ")
            if scheme not in schemes or not token:
                self._send(401, b"", {"WWW-Authenticate": "Negotiate"})
                return False
            if self.ntlm is None:
                options = spnego.NegotiateOptions.wrapping_winrm if state.kerberos else spnego.NegotiateOptions.none
                self.ntlm = spnego.server(protocol=protocol, channel_bindings=bindings, options=options)
            try:
                reply = self.ntlm.step(base64.b64decode(token))
            except (SpnegoError, AttributeError):  # pyspnego's GSSAPI acceptor: AttributeError when no key fits
                self.ntlm = None
                self._send(401, b"", {"WWW-Authenticate": "Negotiate"})
                return False
            if not self.ntlm.complete:
                self._send(401, b"", {"WWW-Authenticate": f"{scheme} {base64.b64encode(reply or b'').decode()}"})
                return False
            self.authenticated = True
            self.final_token = reply
            state.authenticated_as.append(self.ntlm.client_principal or "")
            return True

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if self.final_token:
                self.send_header("WWW-Authenticate", f"Negotiate {base64.b64encode(self.final_token).decode()}")
                self.final_token = None
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def fake_winrm(
    username: str = "svc-kerberos-bot",
    password: str = "Remoting-Passw0rd!",
    *,
    tls: trustme.CA | None = None,
    ntlm: bool = False,
    work_dir: Path | None = None,
    kerberos_keytab: Path | None = None,
) -> Iterator[tuple[FakeWinRM, int]]:
    """A running endpoint on 127.0.0.1 and its port.

    Without ``tls``: plain HTTP and Basic authentication. With ``tls`` (a trustme CA): HTTPS with a
    certificate for 127.0.0.1 from that CA. With ``ntlm``: NTLM (pyspnego's acceptor, which reads the
    account from the file named by NTLM_USER_FILE, written to ``work_dir``); over HTTPS it checks the
    channel binding (tls-server-end-point) the client puts in its NTLM message. With
    ``kerberos_keytab``: Kerberos (Negotiate) with the service keys in that keytab (KRB5_KTNAME is
    set while the endpoint runs; the caller sets KRB5_CONFIG for the realm); over HTTPS the channel
    binding is checked, over HTTP the messages are sealed.
    """
    state = FakeWinRM(username, password, ntlm=ntlm, kerberos=kerberos_keytab is not None)
    bindings = None
    context = None
    if tls is not None:
        issued = tls.issue_cert("127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        issued.configure_cert(context)
        der = ssl.PEM_cert_to_DER_cert(issued.cert_chain_pems[0].bytes().decode())
        bindings = GssChannelBindings(application_data=b"tls-server-end-point:" + hashlib.sha256(der).digest())
    previous = os.environ.get("NTLM_USER_FILE")
    previous_keytab = os.environ.get("KRB5_KTNAME")
    if kerberos_keytab is not None:
        os.environ["KRB5_KTNAME"] = f"FILE:{kerberos_keytab}"  # the acceptor's keys; clients never read it
    if ntlm:
        assert work_dir is not None, "NTLM needs a directory for its account file"
        domain, _, user = username.rpartition("\\")
        accounts = work_dir / "ntlm-users"
        accounts.write_text(f"{domain}:{user}:{password}\n")
        os.environ["NTLM_USER_FILE"] = str(accounts)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state, bindings))
    server.daemon_threads = True
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state, int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        if kerberos_keytab is not None:
            if previous_keytab is None:
                os.environ.pop("KRB5_KTNAME", None)
            else:
                os.environ["KRB5_KTNAME"] = previous_keytab
        if ntlm:
            if previous is None:
                os.environ.pop("NTLM_USER_FILE", None)
            else:
                os.environ["NTLM_USER_FILE"] = previous


__all__ = ["Answer", "FakeWinRM", "ReceivedPipeline", "fake_winrm"]
