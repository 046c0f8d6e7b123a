"""What the gateway and the services it calls must agree on beyond the generated messages.

A service registers, and reports its health, under the name its caller dials and checks;
each name is defined here once, since neither side may import the other.
"""

from dragoman.api.stt.v1 import stt_pb2
from dragoman.api.translate.v1 import translate_pb2

STT_SERVICE_NAME = stt_pb2.DESCRIPTOR.services_by_name["SttService"].full_name
TRANSLATE_SERVICE_NAME = translate_pb2.DESCRIPTOR.services_by_name["TranslateService"].full_name

LanguagePair = tuple[str, str]
"""(source, target) ISO 639-1 codes of a translation, as ListLanguagePairs names them."""
