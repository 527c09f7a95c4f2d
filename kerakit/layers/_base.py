"""What every kerakit layer shares: the package name it is registered under."""

# Layers register as "kerakit>Name" (keras.saving.register_keras_serializable).
PACKAGE = "kerakit"
