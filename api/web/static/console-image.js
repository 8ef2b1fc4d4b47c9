// Refuses a picture over the size limit as soon as it is chosen, before a
// byte is sent: the file input names its limit (data-max-bytes) and the
// sentence to show (data-too-large). The server checks it again anyway.
(function () {
  "use strict";
  var inputs = document.querySelectorAll('input[type="file"][data-max-bytes]');
  Array.prototype.forEach.call(inputs, function (input) {
    input.addEventListener("change", function () {
      var max = Number(input.getAttribute("data-max-bytes"));
      var file = input.files && input.files[0];
      input.setCustomValidity(file && file.size > max ? input.getAttribute("data-too-large") : "");
      input.reportValidity();
    });
  });
})();
