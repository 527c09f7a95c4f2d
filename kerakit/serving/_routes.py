"""The URL segment convertor of the service's routes (imported when an app is built: Starlette loads then)."""

from starlette.convertors import Convertor, register_url_convertor

# The convertor's name in route paths: "/v1/models/{name:kk_segment}".
SEGMENT = "kk_segment"


class ModelSegment(Convertor):
    """A model name, version or verb: no "/" and no ":", so "NAME:predict" is never read as a name."""

    regex = "[^/:]+"

    def convert(self, value):
        return value

    def to_string(self, value):
        return value


register_url_convertor(SEGMENT, ModelSegment())
