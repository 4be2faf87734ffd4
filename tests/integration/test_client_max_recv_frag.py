"""The client's max_recv_frag on the wire: a real loopback socket takes the bind's bytes."""

from __future__ import annotations


def test_the_bind_says_the_max_recv_frag_it_is_given():
    """A small max_recv_frag goes on the wire in the bind (so the server fragments its
    responses); max_xmit_frag stays the client's own."""
    import socket
    import threading

    from scapy.layers.dcerpc import DceRpc5

    from conformance.client.rpc import RpcConnection
    from conformance.wire import wcce

    listener = socket.create_server(("127.0.0.1", 0))
    received = []

    def take():
        peer, _ = listener.accept()
        with peer:
            received.append(peer.recv(4096))

    thread = threading.Thread(target=take)
    thread.start()
    with RpcConnection("127.0.0.1", listener.getsockname()[1], timeout=0.5, max_recv_frag=1432) as conn:
        conn.bind(wcce.IID_ICERTREQUESTD, 0)  # nobody answers: only the bind's bytes matter
    thread.join(5)
    listener.close()
    bind = DceRpc5(received[0])
    assert (bind.payload.max_xmit_frag, bind.payload.max_recv_frag) == (5840, 1432)
