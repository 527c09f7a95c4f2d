"""Running the service: binding the address and the background server."""

import socket

import pytest


def test_a_taken_port_is_refused_by_name_not_by_exiting_the_process():
    import keras

    from kerakit.errors import RunError
    from kerakit.serving import serve

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RunError, match=f"Cannot listen on 127.0.0.1:{port}"):
            serve(model, port=port, block=False)
